// Compiled into libggml-blas.so when oneDNN is installed (scripts/build-ggml-blas.sh; Debian:
// libdnnl-dev). ggml-blas.cpp is then compiled with cblas_sgemm and openblas_set_num_threads
// renamed to the two functions below, so every F32 product ggml's BLAS backend computes goes to
// oneDNN's matmul, and matmul-limits.cpp sends a BF16 weight's products (and a quantized weight's,
// expanded to BF16 per product) to nodeai_onednn_mul_mat_bf16.
//
// Why oneDNN rather than OpenBLAS: on the AVX-512 machines this was measured on (2026-11-30, one
// thread, 1024×576·576×1536), oneDNN's F32 matmul ran at 123–155 GFLOP/s against Debian OpenBLAS
// 0.3.21's 92–103, and its BF16 matmul, which uses AMX tiles where the CPU has them, at 450–1160.
// It is also the library PyTorch's CPU matmuls go through.
#include "onednn-matmul.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace {

using dnnl::memory;
using dt = memory::data_type;

dnnl::engine & cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

dnnl::stream & cpu_stream() {
    static dnnl::stream stream(cpu_engine());
    return stream;
}

// Row-major op(X) of `rows` × `cols` stored with leading dimension ld, transposed or not: its strides.
memory::dims strides_of(bool transposed, int64_t ld) {
    return transposed ? memory::dims{1, ld} : memory::dims{ld, 1};
}

// One primitive per shape, layout and type: creating one JIT-compiles a kernel (tens to hundreds of
// microseconds), and a training step runs the same few hundred shapes over and over.
using MatmulKey = std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

dnnl::matmul & primitive_for(dt type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
    static std::map<MatmulKey, std::unique_ptr<dnnl::matmul>> cache;
    const MatmulKey key{(int) type, trans_a, trans_b, m, n, k, lda, ldb, ldc};
    auto found = cache.find(key);
    if (found != cache.end()) {
        return *found->second;
    }
    const memory::desc a({m, k}, type, strides_of(trans_a, lda));
    const memory::desc b({k, n}, type, strides_of(trans_b, ldb));
    const memory::desc c({m, n}, dt::f32, {ldc, 1});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), cpu_engine());
    auto inserted = cache.emplace(key, std::make_unique<dnnl::matmul>(pd));
    return *inserted.first->second;
}

void execute(dt type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void * a, int64_t lda, const void * b, int64_t ldb, float * c, int64_t ldc) {
    dnnl::matmul & matmul = primitive_for(type, trans_a, trans_b, m, n, k, lda, ldb, ldc);
    auto & engine = cpu_engine();
    memory a_mem(memory::desc({m, k}, type, strides_of(trans_a, lda)), engine, const_cast<void *>(a));
    memory b_mem(memory::desc({k, n}, type, strides_of(trans_b, ldb)), engine, const_cast<void *>(b));
    memory c_mem(memory::desc({m, n}, dt::f32, {ldc, 1}), engine, c);
    matmul.execute(cpu_stream(), {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    cpu_stream().wait();
}

// F32 → BF16, rounding to nearest even (as ggml's and PyTorch's conversions do), 16 at a time.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
void to_bf16_avx512(const float * x, uint16_t * y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_si256((__m256i *) (y + i), (__m256i) _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    }
    for (; i < n; i++) {
        uint32_t u;
        std::memcpy(&u, x + i, 4);
        y[i] = (uint16_t) ((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    }
}

std::vector<uint16_t> & bf16_work() {
    static std::vector<uint16_t> work;
    return work;
}

}  // namespace

extern "C" {

void nodeai_onednn_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, int m, int n, int k,
                         float alpha, const float * a, int lda, const float * b, int ldb, float beta, float * c, int ldc) {
    // ggml-blas.cpp calls it only so: row-major, C = op(A)·op(B).
    if (order != CblasRowMajor || alpha != 1.0f || beta != 0.0f) {
        std::fprintf(stderr, "nodeai_onednn_sgemm: only row-major C = op(A)·op(B) is implemented\n");
        std::abort();
    }
    execute(dt::f32, trans_a != CblasNoTrans, trans_b != CblasNoTrans, m, n, k, a, lda, b, ldb, c, ldc);
}

void nodeai_onednn_set_num_threads(int n_threads) {
    // oneDNN's Debian build runs its kernels in OpenMP parallel regions of this many threads.
    omp_set_num_threads(n_threads);
}

bool nodeai_onednn_has_bf16() {
    static const bool has = __builtin_cpu_supports("avx512bf16") &&
                            dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core_bf16;
    return has;
}

const char * nodeai_onednn_name() {
    static char name[96];
    if (name[0] == 0) {
        const dnnl_version_t * v = dnnl_version();
        const bool amx = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core_amx;
        std::snprintf(name, sizeof name, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch,
                      amx ? "AMX BF16 tiles" : nodeai_onednn_has_bf16() ? "AVX-512 BF16" : "F32 only");
    }
    return name;
}

bool nodeai_onednn_takes_bf16_mul_mat(const ggml_tensor * op) {
    if (op->op != GGML_OP_MUL_MAT || !nodeai_onednn_has_bf16()) {
        return false;
    }
    // A quantized weight needs at least this many rows of activations: below it the weight's
    // expansion costs more than the BF16 tiles save (the trainer's head chunks, tens of tokens
    // against a vocabulary of rows); and its expanded copy may take this much at most.
    constexpr int64_t min_rows = 256;
    constexpr int64_t max_expanded_bytes = int64_t(64) << 20;
    const ggml_tensor * src0 = op->src[0];
    const ggml_tensor * src1 = op->src[1];
    const bool weight_ok =
        (src0->type == GGML_TYPE_BF16 && src0->nb[0] == 2) ||
        (ggml_is_quantized(src0->type) && ggml_get_type_traits(src0->type)->to_float != nullptr && src0->ne[2] == 1 &&
         src0->ne[3] == 1 && ggml_is_contiguous(src0) && src1->ne[1] >= min_rows && ggml_nelements(src0) * 2 <= max_expanded_bytes);
    return weight_ok && src1->type == GGML_TYPE_F32 && ggml_is_contiguous(src1) && op->nb[0] == sizeof(float) && ggml_is_contiguous(op);
}

void nodeai_onednn_mul_mat_bf16(const ggml_tensor * dst) {
    const ggml_tensor * src0 = dst->src[0];  // BF16 or quantized weight [K, N, ne02, ne03], rows contiguous
    const ggml_tensor * src1 = dst->src[1];  // F32 activations [K, M, ne12, ne13], contiguous
    const int64_t K = src0->ne[0];
    const int64_t N = src0->ne[1];
    const int64_t M = src1->ne[1];
    const int64_t r2 = src1->ne[2] / src0->ne[2];
    const int64_t r3 = src1->ne[3] / src0->ne[3];
    const void * weight = src0->data;
    int64_t weight_row = src0->nb[1] / 2;
    if (src0->type != GGML_TYPE_BF16) {
        // A quantized weight (one matrix: nodeai_onednn_takes_bf16_mul_mat says so) is expanded to BF16
        // for this product: O(N·K) against the product's O(M·N·K).
        static std::vector<uint16_t> expanded;
        if ((int64_t) expanded.size() < N * K) {
            expanded.resize(N * K);
        }
        const auto to_float = ggml_get_type_traits(src0->type)->to_float;
        #pragma omp parallel
        {
            std::vector<float> row(K);
            #pragma omp for schedule(static)
            for (int64_t n = 0; n < N; n++) {
                to_float((const char *) src0->data + n * src0->nb[1], row.data(), K);
                to_bf16_avx512(row.data(), expanded.data() + n * K, K);
            }
        }
        weight = expanded.data();
        weight_row = K;
    }
    auto & work = bf16_work();
    if ((int64_t) work.size() < M * K) {
        work.resize(M * K);
    }
    for (int64_t i13 = 0; i13 < src1->ne[3]; i13++) {
        for (int64_t i12 = 0; i12 < src1->ne[2]; i12++) {
            const float * y = (const float *) ((const char *) src1->data + i12 * src1->nb[2] + i13 * src1->nb[3]);
            const int64_t rows = M;
            #pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                to_bf16_avx512((const float *) ((const char *) y + r * src1->nb[1]), work.data() + r * K, K);
            }
            const void * x = (const char *) weight + (i12 / r2) * src0->nb[2] + (i13 / r3) * src0->nb[3];
            float * d = (float *) ((char *) dst->data + i12 * dst->nb[2] + i13 * dst->nb[3]);
            // dst[M×N] = y[M×K] · src0ᵀ, src0 being N rows of K: the weight read in place, as B transposed.
            execute(dt::bf16, false, true, M, N, K, work.data(), K, x, weight_row, d, dst->nb[1] / 4);
        }
    }
}

}  // extern "C"
