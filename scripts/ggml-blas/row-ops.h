// The element-wise ops ggml's BLAS backend computes in a build with oneDNN (row-ops.cpp says why).
#pragma once

#include "ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

// Whether nodeai_row_ops_compute computes this op: an F32 SOFT_MAX (scale, an F32 mask or none; no
// ALiBi, no sinks), SOFT_MAX_BACK (no ALiBi) or SILU_BACK, every tensor contiguous.
bool nodeai_row_ops_take(const struct ggml_tensor * op);
// Computes such an op, as ggml-cpu would, on the OpenMP threads.
void nodeai_row_ops_compute(const struct ggml_tensor * op);

#ifdef __cplusplus
}
#endif
