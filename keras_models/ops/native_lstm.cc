// The recurrent loop of an LSTM layer over a whole sequence, forward and backward, and its
// weight gradients: three ops.
//
// W x + b for all steps and δx = δZ Wᵀ stay in TensorFlow, as large matmuls; the first two ops
// run only the chain that must go step by step. Tensors are time-major, [T, B, F] row-major, so
// step t of batch rows [b, b + n) is one contiguous column-major F × n block. The batch is split
// into one block of rows per intra-op thread, and each block runs its whole chain alone: the
// threads never wait for each other inside the loop.
//
// Forward, with z_x = W x_t + b given (gate blocks i, f, g, o):
//   z = Uᵀ h_{t-1} + z_x ;  i, f, o = σ(z_i, z_f, z_o) ;  g = tanh z_g
//   c_t = g ⊙ i + c_{t-1} ⊙ f ;  h_t = tanh c_t ⊙ o
// and the factors the backward needs: a = [g·i(1−i); c_{t-1}·f(1−f); i(1−g²); tanh c_t·o(1−o)],
// a_c = o(1 − tanh² c_t) and f.
// Backward, from δh_t = ∂L/∂h_t (every step) and ∂L/∂h_T, ∂L/∂c_T (final states), with
// U δz_{T+1} taken as ∂L/∂h_T and δc starting at ∂L/∂c_T:
//   δh = δh_t + U δz_{t+1} ;  δc += δh ⊙ a_c ;  δz = [δc; δc; δc; δh] ⊙ a ;  δc ⊙= f
// giving δz for every step and δh_0, δc_0. A third op computes the weight gradients from δZ,
// ∂W = Xᵀ δZ and ∂U = H_prevᵀ δZ, over all steps at once: for these time-major operands
// Eigen's product is up to 1.6 times faster than TensorFlow's MatMul with transpose_a.
#include <algorithm>

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/blocking_counter.h"
#include "tensorflow/core/platform/threadpool.h"

namespace seqgraph {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::InferenceContext;
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using Column = Eigen::Map<Eigen::ArrayXf>;
using ConstColumn = Eigen::Map<const Eigen::ArrayXf>;

// Fewer columns than this per block and the matmuls get too thin to pay for a thread.
constexpr int64_t kMinColumnsPerBlock = 8;

// σ(x) = (1 + tanh(x / 2)) / 2: Eigen's tanh is vectorised.
template <typename Expression>
auto Sigmoid(const Expression& x) {
  return (x * 0.5f).tanh() * 0.5f + 0.5f;
}

// Runs work(first, count) on [first, first + count) of [0, size), one contiguous block per
// intra-op thread (blocks of at least kMinColumnsPerBlock); the calling thread takes the first.
template <typename Work>
void ForEachBlock(OpKernelContext* context, int64_t size, const Work& work) {
  auto* pool = context->device()->tensorflow_cpu_worker_threads()->workers;
  const int64_t blocks =
      std::max<int64_t>(1, std::min<int64_t>(pool->NumThreads(), size / kMinColumnsPerBlock));
  tensorflow::BlockingCounter done(blocks - 1);
  for (int64_t k = 1; k < blocks; ++k) {
    pool->Schedule([&work, &done, size, blocks, k] {
      const int64_t first = size * k / blocks;
      work(first, size * (k + 1) / blocks - first);
      done.DecrementCount();
    });
  }
  work(0, size / blocks);
  done.Wait();
}

class LstmRecurrenceOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* context) override {
    const Tensor& projected = context->input(0);  // z_x [T, B, 4H]
    const Tensor& recurrent = context->input(1);  // U [H, 4H]
    const Tensor& h0 = context->input(2);         // [B, H]
    const Tensor& c0 = context->input(3);         // [B, H]
    OP_REQUIRES(context, projected.dims() == 3 && recurrent.dims() == 2 &&
                             projected.dim_size(2) == recurrent.dim_size(1) &&
                             recurrent.dim_size(1) == 4 * recurrent.dim_size(0),
                tensorflow::errors::InvalidArgument("expected z_x [T, B, 4H] and U [H, 4H]"));
    const int64_t steps = projected.dim_size(0), batch = projected.dim_size(1);
    const int64_t units = recurrent.dim_size(0), gates = 4 * units;
    const TensorShape per_step({steps, batch, units});
    Tensor *h, *c_last, *factors, *c_factors, *forget;
    OP_REQUIRES_OK(context, context->allocate_output(0, per_step, &h));
    OP_REQUIRES_OK(context, context->allocate_output(1, c0.shape(), &c_last));
    OP_REQUIRES_OK(context, context->allocate_output(2, projected.shape(), &factors));
    OP_REQUIRES_OK(context, context->allocate_output(3, per_step, &c_factors));
    OP_REQUIRES_OK(context, context->allocate_output(4, per_step, &forget));
    const ConstMatrixMap recurrent_t(recurrent.flat<float>().data(), gates, units);  // Uᵀ
    const float* z_x = projected.flat<float>().data();
    const float* h0_data = h0.flat<float>().data();
    float* h_data = h->flat<float>().data();
    float* a_data = factors->flat<float>().data();
    float* a_c_data = c_factors->flat<float>().data();
    float* f_data = forget->flat<float>().data();
    MatrixMap c(c_last->flat<float>().data(), units, batch);
    c = ConstMatrixMap(c0.flat<float>().data(), units, batch);

    ForEachBlock(context, batch, [&](int64_t first, int64_t count) {
      Matrix z(gates, count);
      Eigen::ArrayXf sigma_if(2 * units), g(units), o(units), tanh_c(units);
      for (int64_t t = 0; t < steps; ++t) {
        const float* h_prev = t == 0 ? h0_data + first * units
                                     : h_data + ((t - 1) * batch + first) * units;
        z.noalias() = recurrent_t * ConstMatrixMap(h_prev, units, count);
        for (int64_t b = 0; b < count; ++b) {
          const int64_t column = t * batch + first + b;
          const auto z_b = z.col(b).array();
          const ConstColumn z_x_b(z_x + column * gates, gates);
          sigma_if = Sigmoid(z_b.head(2 * units) + z_x_b.head(2 * units));
          g = (z_b.segment(2 * units, units) + z_x_b.segment(2 * units, units)).tanh();
          o = Sigmoid(z_b.tail(units) + z_x_b.tail(units));
          const auto i = sigma_if.head(units), f = sigma_if.tail(units);
          auto c_b = c.col(first + b).array();
          Column a(a_data + column * gates, gates);
          a.head(units) = g * i * (1 - i);
          a.segment(units, units) = c_b * f * (1 - f);
          a.segment(2 * units, units) = i * (1 - g * g);
          c_b = g * i + c_b * f;
          tanh_c = c_b.tanh();
          a.tail(units) = tanh_c * o * (1 - o);
          Column(h_data + column * units, units) = tanh_c * o;
          Column(a_c_data + column * units, units) = o * (1 - tanh_c * tanh_c);
          Column(f_data + column * units, units) = f;
        }
      }
    });
  }
};

class LstmRecurrenceGradOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* context) override {
    const Tensor& d_h = context->input(0);        // ∂L/∂h_t [T, B, H]
    const Tensor& d_h_last = context->input(1);   // ∂L/∂h_T [B, H]
    const Tensor& d_c_last = context->input(2);   // ∂L/∂c_T [B, H]
    const Tensor& recurrent = context->input(3);  // U [H, 4H]
    const Tensor& factors = context->input(4);    // a [T, B, 4H]
    const Tensor& c_factors = context->input(5);  // a_c [T, B, H]
    const Tensor& forget = context->input(6);     // f [T, B, H]
    const int64_t steps = d_h.dim_size(0), batch = d_h.dim_size(1);
    const int64_t units = recurrent.dim_size(0), gates = 4 * units;
    Tensor *d_z, *d_h0, *d_c0;
    OP_REQUIRES_OK(context, context->allocate_output(0, factors.shape(), &d_z));
    OP_REQUIRES_OK(context, context->allocate_output(1, d_c_last.shape(), &d_h0));
    OP_REQUIRES_OK(context, context->allocate_output(2, d_c_last.shape(), &d_c0));
    // U [H, 4H] column-major, copied once: U δz then multiplies untransposed, which is faster.
    const Matrix recurrent_u =
        ConstMatrixMap(recurrent.flat<float>().data(), gates, units).transpose();
    const float* d_h_data = d_h.flat<float>().data();
    const float* a_data = factors.flat<float>().data();
    const float* a_c_data = c_factors.flat<float>().data();
    const float* f_data = forget.flat<float>().data();
    float* d_z_data = d_z->flat<float>().data();
    MatrixMap d_h_carry(d_h0->flat<float>().data(), units, batch);  // U δz_{t+1}, at last δh_0
    MatrixMap d_c(d_c0->flat<float>().data(), units, batch);
    d_h_carry = ConstMatrixMap(d_h_last.flat<float>().data(), units, batch);
    d_c = ConstMatrixMap(d_c_last.flat<float>().data(), units, batch);

    ForEachBlock(context, batch, [&](int64_t first, int64_t count) {
      Eigen::ArrayXf d_h_b(units);
      for (int64_t t = steps - 1; t >= 0; --t) {
        const int64_t block = t * batch + first;
        for (int64_t b = 0; b < count; ++b) {
          const int64_t column = block + b;
          d_h_b = ConstColumn(d_h_data + column * units, units) +
                  d_h_carry.col(first + b).array();
          auto d_c_b = d_c.col(first + b).array();
          d_c_b += d_h_b * ConstColumn(a_c_data + column * units, units);
          const ConstColumn a(a_data + column * gates, gates);
          Column d_z_b(d_z_data + column * gates, gates);
          for (int k = 0; k < 3; ++k) {
            d_z_b.segment(k * units, units) = d_c_b * a.segment(k * units, units);
          }
          d_z_b.tail(units) = d_h_b * a.tail(units);
          d_c_b *= ConstColumn(f_data + column * units, units);
        }
        d_h_carry.middleCols(first, count).noalias() =
            recurrent_u * ConstMatrixMap(d_z_data + block * gates, gates, count);
      }
    });
  }
};

class WeightGradientOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* context) override {
    const Tensor& inputs = context->input(0);  // [N, F]
    const Tensor& d_z = context->input(1);     // [N, G]
    OP_REQUIRES(context, inputs.dims() == 2 && d_z.dims() == 2 &&
                             inputs.dim_size(0) == d_z.dim_size(0),
                tensorflow::errors::InvalidArgument("expected inputs [N, F] and d_z [N, G]"));
    const int64_t rows = inputs.dim_size(0), features = inputs.dim_size(1);
    const int64_t gates = d_z.dim_size(1);
    Tensor* gradient;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, TensorShape({features, gates}), &gradient));
    // Column-major, the row-major operands are Xᵀ [F, N] and δZᵀ [G, N], the result ∂ᵀ [G, F].
    const ConstMatrixMap inputs_t(inputs.flat<float>().data(), features, rows);
    const ConstMatrixMap d_z_t(d_z.flat<float>().data(), gates, rows);
    MatrixMap gradient_t(gradient->flat<float>().data(), gates, features);
    ForEachBlock(context, gates, [&](int64_t first, int64_t count) {
      gradient_t.middleRows(first, count).noalias() =
          d_z_t.middleRows(first, count) * inputs_t.transpose();
    });
  }
};

REGISTER_OP("SeqgraphLstmRecurrence")
    .Input("projected: float")
    .Input("recurrent_kernel: float")
    .Input("h0: float")
    .Input("c0: float")
    .Output("h: float")
    .Output("c_last: float")
    .Output("factors: float")
    .Output("c_factors: float")
    .Output("forget: float")
    .SetShapeFn([](InferenceContext* c) {
      const auto per_step = c->MakeShape(
          {c->Dim(c->input(0), 0), c->Dim(c->input(0), 1), c->Dim(c->input(1), 0)});
      c->set_output(0, per_step);
      c->set_output(1, c->input(3));
      c->set_output(2, c->input(0));
      c->set_output(3, per_step);
      c->set_output(4, per_step);
      return absl::OkStatus();
    })
    .Doc("Forward loop of an LSTM layer: h, c_T and the factors of the backward loop.");

REGISTER_OP("SeqgraphLstmRecurrenceGrad")
    .Input("d_h: float")
    .Input("d_h_last: float")
    .Input("d_c_last: float")
    .Input("recurrent_kernel: float")
    .Input("factors: float")
    .Input("c_factors: float")
    .Input("forget: float")
    .Output("d_z: float")
    .Output("d_h0: float")
    .Output("d_c0: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(4));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(2));
      return absl::OkStatus();
    })
    .Doc("Backward loop of an LSTM layer: δz for every step, δh_0 and δc_0.");

REGISTER_OP("SeqgraphWeightGradient")
    .Input("inputs: float")
    .Input("d_z: float")
    .Output("gradient: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->Matrix(c->Dim(c->input(0), 1), c->Dim(c->input(1), 1)));
      return absl::OkStatus();
    })
    .Doc("inputsᵀ d_z for inputs [N, F] and d_z [N, G]: the weight gradient [F, G].");

REGISTER_KERNEL_BUILDER(Name("SeqgraphLstmRecurrence").Device(tensorflow::DEVICE_CPU),
                        LstmRecurrenceOp);
REGISTER_KERNEL_BUILDER(Name("SeqgraphLstmRecurrenceGrad").Device(tensorflow::DEVICE_CPU),
                        LstmRecurrenceGradOp);
REGISTER_KERNEL_BUILDER(Name("SeqgraphWeightGradient").Device(tensorflow::DEVICE_CPU),
                        WeightGradientOp);

}  // namespace
}  // namespace seqgraph
