// Compiled into libggml-blas.so next to ggml's ggml-blas.cpp (scripts/build-ggml-blas.sh).
//
// ggml's BLAS backend takes every MUL_MAT whose dimensions are all ≥ 32 and every F32 OUT_PROD. Two
// kinds of them are better left to ggml-cpu, and ggml_backend_sched cannot be told so per node:
// its pass 3 moves any node to the highest-priority backend that supports it and shares its
// buffer type, user assignments included. So the trainer's BLAS backend answers supports_op
// through this wrapper, which declines:
//
// - small products: each switch between the BLAS and CPU backends ends a split, and every CPU
//   split starts and joins ggml's worker threads; a small model's matmuls cost less than that
//   (measured 2026-11-30, d_model 64, 2 threads on a loaded machine: 4.5× the wall time);
// - matmuls by a large non-F32 weight: the BLAS backend converts the weight to F32 on every call, into
//   a work buffer as large as the largest weight so converted (a 151936 × 896 Q8_0 head: 545 MB,
//   converted again for every chunk of the trainer's head); ggml-cpu has kernels for its type.
//
// In a build with oneDNN (NODEAI_ONEDNN), a matmul by a BF16 weight is not converted at all: the
// backend's graph_compute hands it to oneDNN's BF16 matmul (onednn-matmul.cpp), so it is taken
// whatever the weight's size.
#include "ggml.h"
#include "ggml-backend-impl.h"
#include "ggml-blas.h"
#include "ggml-impl.h"

#include <cstddef>
#include <mutex>

#ifdef NODEAI_ONEDNN
#include "onednn-matmul.h"
#include "row-ops.h"
#endif

namespace {

ggml_backend_device limited_device;
bool (*blas_supports_op)(ggml_backend_dev_t, const ggml_tensor *) = nullptr;
// One set of limits per process: the trainer builds one graph at a time.
size_t max_converted_bytes = SIZE_MAX;
int64_t min_macs = 0;
int n_threads = 1;

// A MUL_MAT by a BF16 weight (or a quantized one, expanded to BF16) that oneDNN computes in BF16
// (never when the build or the CPU lacks it).
bool is_bf16_mul_mat(const ggml_tensor * op) {
#ifdef NODEAI_ONEDNN
    return nodeai_onednn_takes_bf16_mul_mat(op);
#else
    (void) op;
    return false;
#endif
}

#ifdef NODEAI_ONEDNN
// Which of this library's own kernels computes an op, if any: asked by supports_op (where the
// scheduler places it) and by graph_compute (which kernel runs it), so the two always agree.
enum class OwnKernel { none, bf16_mul_mat, f32_product, row_op };

OwnKernel own_kernel(const ggml_tensor * op) {
    if (is_bf16_mul_mat(op)) {
        return OwnKernel::bf16_mul_mat;
    }
    if (nodeai_onednn_takes_f32_product(op)) {
        return OwnKernel::f32_product;
    }
    return nodeai_row_ops_take(op) ? OwnKernel::row_op : OwnKernel::none;
}
#endif

bool limited_supports_op(ggml_backend_dev_t dev, const ggml_tensor * op) {
    if (op->op == GGML_OP_MUL_MAT || op->op == GGML_OP_OUT_PROD) {
        // Multiply-adds: every output element sums over src0's rows (ne[0] for MUL_MAT, ne[1] for OUT_PROD).
        const int64_t k = op->op == GGML_OP_MUL_MAT ? op->src[0]->ne[0] : op->src[0]->ne[1];
        if (ggml_nelements(op) * k < min_macs) {
            return false;
        }
    }
#ifdef NODEAI_ONEDNN
    // ggml-blas leaves products with a dimension under 32 to ggml-cpu ("BLAS usually is only faster
    // for large matrices"); oneDNN is faster on the trainer's skinny LoRA products too.
    // ggml-blas takes batched MUL_MATs only when contiguous (one sgemm per batch), OUT_PRODs only
    // of matrices (not attention's batched ones), and no operand read through its strides but
    // out_prod's transposed second one.
    // Element-wise ops between two such products (row-ops.cpp), but a small one stays on ggml-cpu
    // with its neighbours (a small model's products do, under min_macs): taken, it would cost two
    // switches between the backends, each more than it. At the trainer's default 2^23, 2^16 values
    // (ggml-cpu computes those in ~0.1 ms).
    switch (own_kernel(op)) {
        case OwnKernel::bf16_mul_mat:
        case OwnKernel::f32_product:
            return true;
        case OwnKernel::row_op:
            return ggml_nelements(op) * 128 >= min_macs;
        case OwnKernel::none:
            break;
    }
#endif
    if (op->op == GGML_OP_MUL_MAT && op->src[0]->type != GGML_TYPE_F32 &&
        (size_t) ggml_nelements(op->src[0]) * sizeof(float) > max_converted_bytes) {
        return false;
    }
    return blas_supports_op(dev, op);
}

#ifdef NODEAI_ONEDNN
ggml_status (*blas_graph_compute)(ggml_backend_t, ggml_cgraph *) = nullptr;

// ggml-blas's graph_compute, but a BF16 weight's MUL_MAT goes to oneDNN's BF16 matmul, every F32
// product to one oneDNN matmul over its batches, and the element-wise ops of row-ops.cpp to their
// kernels; the nodes between such go to ggml-blas as one view of the graph.
ggml_status limited_graph_compute(ggml_backend_t backend, ggml_cgraph * graph) {
    // ggml-blas sets the library's thread count only before its own products (the OpenMP setting of
    // the calling thread, which then stays): these are computed without it.
    nodeai_onednn_set_num_threads(n_threads);
    int from = 0;
    for (int i = 0; i <= graph->n_nodes; i++) {
        const ggml_tensor * node = i < graph->n_nodes ? graph->nodes[i] : nullptr;
        const OwnKernel kernel = node && (node->flags & GGML_TENSOR_FLAG_COMPUTE) ? own_kernel(node) : OwnKernel::none;
        if (node && kernel == OwnKernel::none) {
            continue;
        }
        if (from < i) {
            ggml_cgraph part = ggml_graph_view(graph, from, i);
            const ggml_status status = blas_graph_compute(backend, &part);
            if (status != GGML_STATUS_SUCCESS) {
                return status;
            }
        }
        switch (kernel) {
            case OwnKernel::bf16_mul_mat:
                nodeai_onednn_mul_mat_bf16(node);
                break;
            case OwnKernel::f32_product:
                nodeai_onednn_f32_product(node);
                break;
            case OwnKernel::row_op:
                nodeai_row_ops_compute(node);
                break;
            case OwnKernel::none:
                break;
        }
        from = i + 1;
    }
    return GGML_STATUS_SUCCESS;
}
#endif

}  // namespace

// A BLAS backend computing with `threads` threads of its library, that declines matmuls of fewer
// than `min_multiply_adds` multiply-adds, and those whose weight would be converted to more than
// `max_bytes` of F32 (0 and SIZE_MAX: none declined). NULL when ggml_backend_blas_init fails.
extern "C" __attribute__((visibility("default"))) ggml_backend_t nodeai_ggml_backend_blas_init(size_t max_bytes, int64_t min_multiply_adds, int threads) {
    ggml_backend_t backend = ggml_backend_blas_init();
    if (backend == nullptr) {
        return nullptr;
    }
    ggml_backend_blas_set_n_threads(backend, threads);
    n_threads = threads;
    static std::once_flag once;
    std::call_once(once, [&] {
        limited_device = *backend->device;
        blas_supports_op = limited_device.iface.supports_op;
        limited_device.iface.supports_op = limited_supports_op;
    });
    max_converted_bytes = max_bytes;
    min_macs = min_multiply_adds;
    backend->device = &limited_device;
#ifdef NODEAI_ONEDNN
    blas_graph_compute = backend->iface.graph_compute;
    backend->iface.graph_compute = limited_graph_compute;
#endif
    return backend;
}

// Whether a BF16 weight's products are computed in BF16 (oneDNN on a CPU with BF16 dot products).
extern "C" __attribute__((visibility("default"))) bool nodeai_ggml_blas_bf16(void) {
#ifdef NODEAI_ONEDNN
    return nodeai_onednn_has_bf16();
#else
    return false;
#endif
}

// Who computes the products: "oneDNN 2.6.3 (AMX BF16 tiles)", or NULL in an OpenBLAS build (whose
// library then names itself).
extern "C" __attribute__((visibility("default"))) const char * nodeai_ggml_blas_vendor(void) {
#ifdef NODEAI_ONEDNN
    return nodeai_onednn_name();
#else
    return nullptr;
#endif
}
