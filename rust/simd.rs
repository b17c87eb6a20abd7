//! Run-time choice between the AVX2 build and the portable build of a lane-loop kernel.

/// Defines `fn $name(args) -> ret` that runs `$body(args)` compiled with AVX2 enabled when
/// the CPU has it (detected at run time, cached by `std`), and the portable build
/// otherwise. `$body` should be `#[inline(always)]`, so that each build inlines its own
/// copy of the lane loop and the compiler vectorises it for that target. Both builds run
/// the same operations in the same order (AVX2 without FMA contracts nothing), so their
/// results are bit-identical; the kernels' tests check it on random inputs.
///
/// ```ignore
/// avx2_dispatch! {
///     /// One pass over the values.
///     fn scan(name: &str, values: &[f64]) -> Result<Scan> => scan_impl
/// }
/// ```
macro_rules! avx2_dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use avx2_dispatch;
