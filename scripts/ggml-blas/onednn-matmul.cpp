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

// One operand of a product: its dimensions (batches first, then rows and columns) and the stride of
// each, in elements.
struct Operand {
    memory::dims dims;
    memory::dims strides;
};

// One primitive per shape, layout and type: creating one JIT-compiles a kernel (tens to hundreds of
// microseconds), and a training step runs the same few hundred shapes over and over.
dnnl::matmul & primitive_for(dt type, const Operand & a, const Operand & b, const Operand & c) {
    static std::map<std::vector<int64_t>, std::unique_ptr<dnnl::matmul>> cache;
    // With OpenMP a primitive keeps the thread count it was created under: part of the key, so a
    // later trainer with another count gets primitives of its own.
    std::vector<int64_t> key{(int64_t) type, (int64_t) omp_get_max_threads()};
    for (const Operand * x : {&a, &b, &c}) {
        key.push_back((int64_t) x->dims.size());
        key.insert(key.end(), x->dims.begin(), x->dims.end());
        key.insert(key.end(), x->strides.begin(), x->strides.end());
    }
    auto found = cache.find(key);
    if (found != cache.end()) {
        return *found->second;
    }
    const memory::desc a_desc(a.dims, type, a.strides);
    const memory::desc b_desc(b.dims, type, b.strides);
    const memory::desc c_desc(c.dims, dt::f32, c.strides);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_desc, b_desc, c_desc), cpu_engine());
    auto inserted = cache.emplace(std::move(key), std::make_unique<dnnl::matmul>(pd));
    return *inserted.first->second;
}

// c = a · b over every batch (b's batch dimensions may be 1: broadcast), in one call.
void execute(dt type, const Operand & a, const void * a_data, const Operand & b, const void * b_data, const Operand & c, float * c_data) {
    dnnl::matmul & matmul = primitive_for(type, a, b, c);
    auto & engine = cpu_engine();
    memory a_mem(memory::desc(a.dims, type, a.strides), engine, const_cast<void *>(a_data));
    memory b_mem(memory::desc(b.dims, type, b.strides), engine, const_cast<void *>(b_data));
    memory c_mem(memory::desc(c.dims, dt::f32, c.strides), engine, c_data);
    matmul.execute(cpu_stream(), {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    cpu_stream().wait();
}

void execute(dt type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void * a, int64_t lda, const void * b, int64_t ldb, float * c, int64_t ldc) {
    execute(type, {{m, k}, strides_of(trans_a, lda)}, a, {{k, n}, strides_of(trans_b, ldb)}, b, {{m, n}, {ldc, 1}}, c);
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

bool nodeai_onednn_takes_f32_product(const ggml_tensor * op) {
    if (op->op != GGML_OP_MUL_MAT && op->op != GGML_OP_OUT_PROD) {
        return false;
    }
    // Each matrix is read in place when one of its two inner strides is one element: a plain
    // matrix or a transposed view (out_prod's backward operands), whatever its batch strides.
    const auto readable = [](const ggml_tensor * t) {
        return t->type == GGML_TYPE_F32 && (t->nb[0] == sizeof(float) || t->nb[1] == sizeof(float));
    };
    return readable(op->src[0]) && readable(op->src[1]) && op->type == GGML_TYPE_F32 && ggml_is_contiguous(op);
}

void nodeai_onednn_f32_product(const ggml_tensor * dst) {
    const ggml_tensor * src0 = dst->src[0];
    const ggml_tensor * src1 = dst->src[1];
    const bool mul_mat = dst->op == GGML_OP_MUL_MAT;
    const auto el = [](size_t nb) { return (int64_t) (nb / sizeof(float)); };
    // Both ops are dst[i1][i0] = Σ_k x[i1][k] · y[k][i0] per batch, with x read from src1 and y from
    // src0: mul_mat sums over dim 0 of both, out_prod over dim 1.
    const int64_t M = dst->ne[1];
    const int64_t N = dst->ne[0];
    const int64_t K = mul_mat ? src0->ne[0] : src0->ne[1];
    Operand x, y, d;
    // The batches, outermost first. ggml broadcasts src0 over dst's dims 2 and 3 as i02 = i2 / r2,
    // so each of those dims is (src0's index, repeat): oneDNN broadcasts a weights dimension of 1.
    for (int dim = 3; dim >= 2; dim--) {
        const int64_t outer = src0->ne[dim];
        const int64_t repeat = dst->ne[dim] / outer;
        if (outer > 1) {
            x.dims.push_back(outer), x.strides.push_back(repeat * el(src1->nb[dim]));
            y.dims.push_back(outer), y.strides.push_back(el(src0->nb[dim]));
            d.dims.push_back(outer), d.strides.push_back(repeat * el(dst->nb[dim]));
        }
        if (repeat > 1) {
            x.dims.push_back(repeat), x.strides.push_back(el(src1->nb[dim]));
            y.dims.push_back(1), y.strides.push_back(el(src0->nb[dim]));
            d.dims.push_back(repeat), d.strides.push_back(el(dst->nb[dim]));
        }
    }
    x.dims.insert(x.dims.end(), {M, K});
    y.dims.insert(y.dims.end(), {K, N});
    d.dims.insert(d.dims.end(), {M, N});
    if (mul_mat) {
        x.strides.insert(x.strides.end(), {el(src1->nb[1]), el(src1->nb[0])});
        y.strides.insert(y.strides.end(), {el(src0->nb[0]), el(src0->nb[1])});
    } else {
        x.strides.insert(x.strides.end(), {el(src1->nb[0]), el(src1->nb[1])});
        y.strides.insert(y.strides.end(), {el(src0->nb[1]), el(src0->nb[0])});
    }
    d.strides.insert(d.strides.end(), {el(dst->nb[1]), 1});
    execute(dt::f32, x, src1->data, y, src0->data, d, (float *) dst->data);
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
