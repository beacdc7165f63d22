"""The generated register-blocked kernels of :mod:`convlens.ops.direct_filters_jit`, one module each (forward,
kernel gradient and 1x1 forward, for blocks of 32 and of 16 filters). Written by
:func:`convlens.ops.direct_filters_jit.write_kernels`; do not edit them by hand."""
