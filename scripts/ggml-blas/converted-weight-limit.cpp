// Compiled into libggml-blas.so next to ggml's ggml-blas.cpp (scripts/build-ggml-blas.sh).
//
// ggml's BLAS backend takes every large enough MUL_MAT, converting a non-F32 weight to F32 on each
// call into a work buffer as large as the largest weight so converted (a 151936 × 896 Q8_0 head:
// 545 MB, converted again for every chunk of the trainer's head). ggml_backend_sched cannot be told
// to keep such a node on the CPU: its pass 3 moves any node to the highest-priority backend that
// supports it and shares its buffer type, user assignments included. So the trainer's BLAS backend
// answers supports_op through this wrapper, which declines those matmuls; they stay on ggml-cpu's
// kernels for the weight's own type.
#include "ggml.h"
#include "ggml-backend-impl.h"
#include "ggml-blas.h"

#include <cstddef>
#include <mutex>

namespace {

ggml_backend_device limited_device;
bool (*blas_supports_op)(ggml_backend_dev_t, const ggml_tensor *) = nullptr;
// One limit per process: the trainer builds one graph at a time.
size_t max_converted_bytes = SIZE_MAX;

bool limited_supports_op(ggml_backend_dev_t dev, const ggml_tensor * op) {
    if (op->op == GGML_OP_MUL_MAT && op->src[0]->type != GGML_TYPE_F32 &&
        (size_t) ggml_nelements(op->src[0]) * sizeof(float) > max_converted_bytes) {
        return false;
    }
    return blas_supports_op(dev, op);
}

}  // namespace

// A BLAS backend that declines matmuls whose weight would be converted to more than
// `max_bytes` of F32 (SIZE_MAX: none declined). NULL when ggml_backend_blas_init fails.
extern "C" __attribute__((visibility("default"))) ggml_backend_t nodeai_ggml_backend_blas_init_limited(size_t max_bytes) {
    ggml_backend_t backend = ggml_backend_blas_init();
    if (backend == nullptr) {
        return nullptr;
    }
    static std::once_flag once;
    std::call_once(once, [&] {
        limited_device = *backend->device;
        blas_supports_op = limited_device.iface.supports_op;
        limited_device.iface.supports_op = limited_supports_op;
    });
    max_converted_bytes = max_bytes;
    backend->device = &limited_device;
    return backend;
}
