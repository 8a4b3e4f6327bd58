// Compiled into libggml-blas.so in a build with oneDNN (scripts/build-ggml-blas.sh): three of the
// trainer's element-wise ops, computed by the BLAS backend instead of ggml-cpu.
//
// Why: on a small model they sit between two products the backend computes (attention's scores →
// soft_max → scores · V; and back through soft_max_back; the feed-forward's gradient → silu_back →
// the gate's products), so taking them saves two switches between the backends each, and ggml-cpu
// computes them slowly: soft_max with a scalar max and several passes per row, silu_back with a
// scalar expf per element (the reference config, one thread, 2026-11-30: soft_max 1.35 ms a call
// on 4096 rows of 128, silu_back 1.5 ms on 393,216 values). Here they are vectorised with glibc's
// libmvec expf (AVX-512; scalar expf elsewhere) and parallelised over rows with the OpenMP threads
// oneDNN uses. The arithmetic is ggml-cpu's (ops.cpp: ggml_compute_forward_soft_max_f32,
// _soft_max_ext_back_f32, _silu_back_f32), in the same order but for the sums, which add 16 lanes
// at a time in float (ggml adds its vectors' sums in double).
#include "row-ops.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

extern "C" __m512 _ZGVeN16v_expf(__m512);  // libmvec's 16-lane expf (glibc; ≤ 4 ulp, exp(-inf) = 0)

namespace {

float op_param(const ggml_tensor * op, int i) {
    float v;
    std::memcpy(&v, (const float *) op->op_params + i, sizeof v);
    return v;
}

bool has_avx512() {
    static const bool has = __builtin_cpu_supports("avx512f");
    return has;
}

const float * row_of(const ggml_tensor * t, int64_t r) {
    // Contiguous: row r of a tensor whose rows are ne[0] floats.
    return (const float *) t->data + r * t->ne[0];
}

// The lanes of a 16-float step that hold values when `left` of them remain.
inline __mmask16 lanes(int64_t left) {
    return left >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << left) - 1);
}

// exp(x), but 0 below −87 (where e^x is under FLT_MIN): libmvec computes each lane outside its
// range (a masked score's −inf) with a scalar call, 6× slower on a causal mask's half-masked rows.
// A NaN stays NaN (max_ps returns its second operand for one), so a diverged row still shows.
__attribute__((target("avx512f"))) __m512 exp_or_zero(__m512 x) {
    const __m512 low = _mm512_set1_ps(-87.0f);
    const __mmask16 kept = _mm512_cmp_ps_mask(x, low, _CMP_NLT_UQ);  // x ≥ −87, or NaN
    return _mm512_maskz_mov_ps(kept, _ZGVeN16v_expf(_mm512_max_ps(low, x)));
}

// y = softmax(x·scale + mask) over one row of n.
__attribute__((target("avx512f"))) void soft_max_row_avx512(int64_t n, float * y, const float * x, const float * mask, float scale) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(n - i);
        __m512 w = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_set1_ps(scale));
        if (mask) {
            w = _mm512_add_ps(w, _mm512_maskz_loadu_ps(k, mask + i));
        }
        _mm512_mask_storeu_ps(y + i, k, w);
        vmax = _mm512_mask_max_ps(vmax, k, vmax, w);
    }
    const float max = _mm512_reduce_max_ps(vmax);
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(n - i);
        const __m512 e = exp_or_zero(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, y + i), _mm512_set1_ps(max)));
        _mm512_mask_storeu_ps(y + i, k, e);
        vsum = _mm512_mask_add_ps(vsum, k, vsum, e);
    }
    const __m512 inv = _mm512_set1_ps((float) (1.0 / (double) _mm512_reduce_add_ps(vsum)));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), inv));
    }
}

void soft_max_row(int64_t n, float * y, const float * x, const float * mask, float scale) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        y[i] = x[i] * scale + (mask ? mask[i] : 0.0f);
        max = std::fmax(max, y[i]);
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = std::exp(y[i] - max);
        sum += y[i];
    }
    const float inv = (float) (1.0 / sum);
    for (int64_t i = 0; i < n; i++) {
        y[i] *= inv;
    }
}

void soft_max(const ggml_tensor * op) {
    const ggml_tensor * src = op->src[0];
    const ggml_tensor * mask = op->src[1];
    const float scale = op_param(op, 0);
    const int64_t n = src->ne[0];
    const int64_t rows_per_matrix = src->ne[1];
    const int64_t rows = ggml_nrows(src);
    const bool avx512 = has_avx512();
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        // The mask is one [n, ≥ rows_per_matrix] matrix (or a batch of them), broadcast as ggml does.
        const float * m = nullptr;
        if (mask) {
            const int64_t i1 = r % rows_per_matrix;
            const int64_t i2 = (r / rows_per_matrix) % src->ne[2];
            const int64_t i3 = r / (rows_per_matrix * src->ne[2]);
            m = (const float *) ((const char *) mask->data + i1 * mask->nb[1] + (i2 % mask->ne[2]) * mask->nb[2] + (i3 % mask->ne[3]) * mask->nb[3]);
        }
        float * y = (float *) row_of(op, r);
        if (avx512) {
            soft_max_row_avx512(n, y, row_of(src, r), m, scale);
        } else {
            soft_max_row(n, y, row_of(src, r), m, scale);
        }
    }
}

// dx = (dy − y·dy) ⊙ y · scale, row by row (softmax's backward).
void soft_max_back(const ggml_tensor * op) {
    const ggml_tensor * dy_t = op->src[0];
    const ggml_tensor * y_t = op->src[1];
    const float scale = op_param(op, 0);
    const int64_t n = dy_t->ne[0];
    const int64_t rows = ggml_nrows(dy_t);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float * dy = row_of(dy_t, r);
        const float * y = row_of(y_t, r);
        float * dx = (float *) row_of(op, r);
        float dot = 0;
        #pragma omp simd reduction(+ : dot)
        for (int64_t i = 0; i < n; i++) {
            dot += y[i] * dy[i];
        }
        #pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            dx[i] = (dy[i] - dot) * y[i] * scale;
        }
    }
}

// dx = dy · s · (1 + x·(1 − s)), s = sigmoid(x) (silu's backward), over n values.
__attribute__((target("avx512f"))) void silu_back_avx512(int64_t n, float * dx, const float * x, const float * dy) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        // e^−x clamped to e^87, since libmvec's out-of-range lanes take its scalar path: below
        // x = −87, s is then 1.6e−38 instead of less, nothing a gradient notices. (min_ps returns
        // its second operand for a NaN, so a NaN stays NaN.)
        const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, _ZGVeN16v_expf(_mm512_min_ps(_mm512_set1_ps(87.0f), _mm512_sub_ps(_mm512_setzero_ps(), v)))));
        const __m512 g = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + i), s), _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one));
        _mm512_mask_storeu_ps(dx + i, k, g);
    }
}

void silu_back(const ggml_tensor * op) {
    const float * dy = (const float *) op->src[0]->data;
    const float * x = (const float *) op->src[1]->data;
    float * dx = (float *) op->data;
    const int64_t n = ggml_nelements(op);
    // Blocks of whole cache lines, so two threads never write one.
    constexpr int64_t block = 4096;
    const bool avx512 = has_avx512();
    #pragma omp parallel for schedule(static)
    for (int64_t from = 0; from < n; from += block) {
        const int64_t len = n - from < block ? n - from : block;
        if (avx512) {
            silu_back_avx512(len, dx + from, x + from, dy + from);
        } else {
            for (int64_t i = from; i < from + len; i++) {
                const float s = 1.0f / (1.0f + std::exp(-x[i]));
                dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
            }
        }
    }
}

bool f32_contiguous(const ggml_tensor * t) {
    return t->type == GGML_TYPE_F32 && ggml_is_contiguous(t);
}

}  // namespace

extern "C" {

bool nodeai_row_ops_take(const ggml_tensor * op) {
    switch (op->op) {
        case GGML_OP_SOFT_MAX: {
            // No ALiBi (max_bias 0) and no attention sinks (src[2]): neither is in the trainer's graphs.
            const ggml_tensor * mask = op->src[1];
            return f32_contiguous(op) && f32_contiguous(op->src[0]) && op_param(op, 1) == 0.0f && op->src[2] == nullptr &&
                   (mask == nullptr || (mask->type == GGML_TYPE_F32 && mask->nb[0] == sizeof(float)));
        }
        case GGML_OP_SOFT_MAX_BACK:
            return f32_contiguous(op) && f32_contiguous(op->src[0]) && f32_contiguous(op->src[1]) && op_param(op, 1) == 0.0f;
        case GGML_OP_SILU_BACK:
            return f32_contiguous(op) && f32_contiguous(op->src[0]) && f32_contiguous(op->src[1]);
        default:
            return false;
    }
}

void nodeai_row_ops_compute(const ggml_tensor * op) {
    switch (op->op) {
        case GGML_OP_SOFT_MAX:
            soft_max(op);
            break;
        case GGML_OP_SOFT_MAX_BACK:
            soft_max_back(op);
            break;
        case GGML_OP_SILU_BACK:
            silu_back(op);
            break;
        default:
            break;
    }
}

}  // extern "C"
