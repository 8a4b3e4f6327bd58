// oneDNN's matmuls for ggml's BLAS backend (onednn-matmul.cpp says why); only in a build with oneDNN
// (NODEAI_ONEDNN, scripts/build-ggml-blas.sh).
#pragma once

#include "cblas.h"
#include "ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

// cblas_sgemm for ggml-blas.cpp (row-major, alpha 1, beta 0: how it calls it).
void nodeai_onednn_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, int m, int n, int k,
                         float alpha, const float * a, int lda, const float * b, int ldb, float beta, float * c, int ldc);
// openblas_set_num_threads for ggml-blas.cpp: the OpenMP threads oneDNN computes with.
void nodeai_onednn_set_num_threads(int n_threads);
// Whether this CPU has BF16 dot products (AVX-512 BF16, or AMX) for nodeai_onednn_mul_mat_bf16.
bool nodeai_onednn_has_bf16(void);
// "oneDNN 2.6.3 (AMX BF16 tiles)", for the trainer's events.
const char * nodeai_onednn_name(void);
// Whether nodeai_onednn_f32_product computes this op: an F32 MUL_MAT or OUT_PROD of any size,
// batched or not, into a contiguous dst, each operand a plain matrix or a transposed view per batch.
bool nodeai_onednn_takes_f32_product(const struct ggml_tensor * op);
// dst = the op above, as one oneDNN matmul over all of its batches (src0 broadcast as ggml does).
void nodeai_onednn_f32_product(const struct ggml_tensor * dst);
// Whether nodeai_onednn_mul_mat_bf16 computes this op: a MUL_MAT on a CPU with BF16 dot products,
// by a BF16 weight with contiguous rows or by one quantized matrix (expanded to BF16 per product,
// when the activations have enough rows to pay for that), of contiguous F32 activations into a
// contiguous dst.
bool nodeai_onednn_takes_bf16_mul_mat(const struct ggml_tensor * op);
// dst = mul_mat(src0, src1) for a BF16 (or, as above, quantized) src0 with contiguous rows and a contiguous F32 src1 (rounded to
// BF16 for the product; F32 accumulation), broadcasting src0 over dims 2 and 3 as ggml does.
void nodeai_onednn_mul_mat_bf16(const struct ggml_tensor * dst);

#ifdef __cplusplus
}
#endif
