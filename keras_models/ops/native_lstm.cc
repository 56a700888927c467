// The recurrent loop of an LSTM-family layer over a whole sequence, forward and backward, and its
// weight gradients: three ops. One kernel serves three cells (attr `cell`):
//   "lstm"     the LSTM, gate blocks (i, f, g, o), U [H, 4H] reads h;
//   "classic"  the LSTM plus diagonal peepholes p = (p_i, p_f, p_o) on c;
//   "matrix"   the full-matrix peephole LSTM, blocks (f, i, o, c), U [H, 3H] reads c, and the
//              candidate σ(z_c) has no recurrent term.
//
// The forward op takes either z_x = W x + b of all steps, or x, W and b and forms z_x step by
// step in the loop (never storing it: for a narrow x, it is the largest tensor of the pass); in
// that case the backward op also sums δx = W δz, ∂W = Σ x δzᵀ and ∂b = Σ δz while each δz is at
// hand, and otherwise those are large matmuls after the loop. Tensors are time-major, [T, B, F]
// row-major, so step t of batch rows [b, b + n) is one contiguous column-major F × n block. The
// batch is split into one block of rows per intra-op thread, and each block runs its whole chain
// alone: the threads never wait for each other inside the loop. U is packed for Eigen's matrix
// micro-kernel once per op (PackedLhs), so a step packs only its own operand, and no product
// allocates: see PackedLhs for why that matters.
//
// Forward, with z_x = W x_t + b given and r = h_{t-1} ("lstm", "classic") or c_{t-1} ("matrix"):
//   lstm:    z = Uᵀ r + z_x ; i, f, o = σ(z_i, z_f, z_o) ; g = tanh z_g ; c_t = g ⊙ i + c_{t-1} ⊙ f
//   classic: i, f = σ(z_i + p_i ⊙ c_{t-1}, z_f + p_f ⊙ c_{t-1}) ; o = σ(z_o + p_o ⊙ c_t)
//   matrix:  f, i, o = σ(Uᵀ r + z_x[f, i, o]) ; s = σ(z_x[c]) ; c_t = s ⊙ i + c_{t-1} ⊙ f
//   and h_t = tanh c_t ⊙ o.
// Each step keeps the factors its backward step needs: a [4H] (δz = δc or δh times a, block by
// block), a_c [H] (δc += δh ⊙ a_c) and the carry f' [H] (δc_{t-1} = δc ⊙ f' + …):
//   lstm:    a = [g·i(1−i); c_{t-1}·f(1−f); i(1−g²); tanh c_t·o(1−o)], a_c = o(1−tanh² c_t), f' = f
//   classic: a as lstm, a_c += a_o ⊙ p_o, f' = f + a_i ⊙ p_i + a_f ⊙ p_f
//   matrix:  a = [c_{t-1}·f(1−f); s·i(1−i); tanh c_t·o(1−o); i·s(1−s)], a_c as lstm, f' = f.
// Backward, from δh_t = ∂L/∂h_t (every step) and ∂L/∂h_T, ∂L/∂c_T (final states):
//   δh = δh_t + carry_h ;  δc += δh ⊙ a_c ;  δz = δc ⊙ a except the o block, δh ⊙ a_o ;  δc ⊙= f'
//   lstm, classic: carry_h = U δz (h_{t-1}'s gradient) ;  matrix: carry_h = 0, δc += U δz_{f,i,o}
//   classic also sums ∂p_i = Σ δz_i ⊙ c_{t-1}, ∂p_f = Σ δz_f ⊙ c_{t-1}, ∂p_o = Σ δz_o ⊙ c_t.
//
// A mask keep [T, B] (optional, [0] for none) holds a row's state where it is false, as Keras'
// masked RNN does: h_t = h_{t-1}, c_t = c_{t-1}. Backward such a step passes δh and δc on
// unchanged and has δz = 0. The product of a step covers only the span of its block's kept rows,
// and blocks are cut so that each holds about the same number of kept steps; rows sorted by
// their number of kept steps make those spans exactly the kept rows (left padding).
//
// A third op computes the weight gradients from δZ, ∂W = Xᵀ δZ and ∂U = Rᵀ δZ, over all steps at
// once (with a mask, step by step over the span of the kept rows): for these time-major operands
// Eigen's product is up to 1.6 times faster than TensorFlow's MatMul with transpose_a.
#include <algorithm>
#include <string>
#include <vector>

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
using StridedMatrixMap = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;
using Array = Eigen::ArrayXf;
using Column = Eigen::Map<Eigen::ArrayXf>;
using ConstColumn = Eigen::Map<const Eigen::ArrayXf>;

enum class Cell { kLstm, kClassic, kMatrix };

// Fewer columns than this per block and the matmuls get too thin to pay for a thread.
constexpr int64_t kMinColumnsPerBlock = 8;

// σ(x) = (1 + tanh(x / 2)) / 2: Eigen's tanh is vectorised.
template <typename Expression>
auto Sigmoid(const Expression& x) {
  return (x * 0.5f).tanh() * 0.5f + 0.5f;
}

// Eigen's matrix product, `noalias() +=`, packs both operands for its micro-kernel and allocates
// the packing buffers (several hundred KB here) on every call. Both costs recur at every step of a
// loop whose left operand never changes, and the second is worse than it looks: with glibc's mmap
// threshold at its default 128 KB, which TensorFlow's tf.data.Dataset.from_generator sets again
// whatever the process chose, each buffer was a fresh mapping, faulted in page by page and unmapped
// after the product (about 28 000 page faults per training step of the memory model, contending
// between the threads). The two classes below run the same kernels on buffers allocated once.
namespace gemm = Eigen::internal;
using Index = Eigen::Index;
using GemmTraits = gemm::gebp_traits<float, float>;
using ResultMapper = gemm::blas_data_mapper<float, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
using MicroKernel = gemm::gebp_kernel<float, float, Index, ResultMapper, GemmTraits::mr,
                                       GemmTraits::nr, false, false>;
template <int kOrder>
using OperandMapper = gemm::const_blas_data_mapper<float, Index, kOrder>;
template <int kOrder>
using PackRhs = gemm::gemm_pack_rhs<float, Index, OperandMapper<kOrder>, GemmTraits::nr, kOrder>;

// Packed panels start on a multiple of this many floats (64 bytes: aligned loads).
constexpr Index kPanelAlign = 16;
Index Aligned(Index size) { return (size + kPanelAlign - 1) / kPanelAlign * kPanelAlign; }

// A constant left operand A [rows × depth], packed once: dst += A · rhs for any rhs [depth × n]
// (column-major; blocked for n up to max_cols), packing only rhs, into the caller's buffer (one per
// thread).
class PackedLhs {
 public:
  // A read from `data` with outer stride `stride`, column-major or (kOrder) row-major.
  template <int kOrder>
  static PackedLhs Pack(const float* data, Index stride, Index rows, Index depth, Index max_cols) {
    PackedLhs packed(rows, depth, max_cols);
    gemm::gemm_pack_lhs<float, Index, OperandMapper<kOrder>, GemmTraits::mr,
                        GemmTraits::LhsProgress, typename GemmTraits::LhsPacket4Packing, kOrder>
        pack;
    const OperandMapper<kOrder> lhs(data, stride);
    Index offset = 0;
    for (Index k = 0; k < depth; k += packed.kc_) {
      for (Index i = 0; i < rows; i += packed.mc_) {
        const Index kc = std::min(packed.kc_, depth - k), mc = std::min(packed.mc_, rows - i);
        packed.offsets_.push_back(offset);
        offset += Aligned(kc * mc);
      }
    }
    packed.panels_.resize(offset);
    for (Index k = 0, panel = 0; k < depth; k += packed.kc_) {
      for (Index i = 0; i < rows; i += packed.mc_, ++panel) {
        pack(packed.panels_.data() + packed.offsets_[panel], lhs.getSubMapper(i, k),
             std::min(packed.kc_, depth - k), std::min(packed.mc_, rows - i));
      }
    }
    return packed;
  }

  // Floats of a thread's rhs buffer.
  Index rhs_buffer_size() const { return kc_ * nc_; }

  // dst [rows × n] += A · rhs, rhs [depth × n] column-major with outer stride `rhs_stride`.
  template <typename Dst>
  void AddProduct(Dst&& dst, const float* rhs_data, Index rhs_stride,
                  Eigen::VectorXf& rhs_buffer) const {
    const Index cols = dst.cols();
    if (cols == 0) return;
    const OperandMapper<Eigen::ColMajor> rhs(rhs_data, rhs_stride);
    const ResultMapper result(dst.data(), dst.outerStride());
    PackRhs<Eigen::ColMajor> pack_rhs;
    MicroKernel kernel;
    for (Index j = 0; j < cols; j += nc_) {
      const Index nc = std::min(nc_, cols - j);
      for (Index k = 0, panel = 0; k < depth_; k += kc_) {
        const Index kc = std::min(kc_, depth_ - k);
        pack_rhs(rhs_buffer.data(), rhs.getSubMapper(k, j), kc, nc);
        for (Index i = 0; i < rows_; i += mc_, ++panel) {
          kernel(result.getSubMapper(i, j), panels_.data() + offsets_[panel], rhs_buffer.data(),
                 std::min(mc_, rows_ - i), kc, nc, 1.0f);
        }
      }
    }
  }

 private:
  PackedLhs(Index rows, Index depth, Index max_cols)
      : rows_(rows), depth_(depth), kc_(depth), mc_(rows), nc_(std::max<Index>(1, max_cols)) {
    gemm::computeProductBlockingSizes<float, float, 1, Index>(kc_, mc_, nc_, 1);
    kc_ = std::max<Index>(1, kc_);
    mc_ = std::max<Index>(1, mc_);
  }

  Index rows_, depth_, kc_, mc_, nc_;
  std::vector<Index> offsets_;  // of panel (k, i), k-major
  Eigen::VectorXf panels_;
};

// dst += lhs · rhs for a series of products of at most rows × depth by depth × cols, on
// packing buffers allocated once.
class ProductWorkspace {
 public:
  ProductWorkspace(Index rows, Index cols, Index depth) : blocking_(rows, cols, depth, 1, true) {
    blocking_.allocateAll();
  }

  // lhs column-major with unit inner stride; rhs the same or the transpose of such a matrix.
  template <typename Dst, typename Lhs, typename Rhs>
  void AddProduct(Dst&& dst, const Lhs& lhs, const Rhs& rhs) {
    constexpr int kRhsOrder = (Rhs::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor;
    static_assert(!(Lhs::Flags & Eigen::RowMajorBit), "lhs must be column-major");
    if (dst.rows() == 0 || dst.cols() == 0 || lhs.cols() == 0) return;
    gemm::general_matrix_matrix_product<Index, float, Eigen::ColMajor, false, float, kRhsOrder,
                                        false, Eigen::ColMajor, 1>::run(
        dst.rows(), dst.cols(), lhs.cols(), lhs.data(), lhs.outerStride(), rhs.data(),
        rhs.outerStride(), dst.data(), 1, dst.outerStride(), 1.0f, blocking_);
  }

 private:
  gemm::gemm_blocking_space<Eigen::ColMajor, float, float, Eigen::Dynamic, Eigen::Dynamic,
                            Eigen::Dynamic>
      blocking_;
};

// Block bounds over [0, size), one block per intra-op thread (at least kMinColumnsPerBlock
// columns each): of equal size, or with `cost` (one entry per column) of about equal cost.
std::vector<int64_t> BlockBounds(int64_t threads, int64_t size, const std::vector<int64_t>* cost) {
  const int64_t blocks =
      std::max<int64_t>(1, std::min<int64_t>(threads, size / kMinColumnsPerBlock));
  std::vector<int64_t> bounds(blocks + 1, size);
  bounds[0] = 0;
  if (cost == nullptr) {
    for (int64_t k = 1; k < blocks; ++k) bounds[k] = size * k / blocks;
    return bounds;
  }
  int64_t total = 0;
  for (int64_t c : *cost) total += c;
  int64_t sum = 0, column = 0;
  for (int64_t k = 1; k < blocks; ++k) {
    while (column < size && (sum + (*cost)[column]) * blocks <= total * k) sum += (*cost)[column++];
    // Keep every block at least kMinColumnsPerBlock wide.
    bounds[k] = std::clamp(column, bounds[k - 1] + kMinColumnsPerBlock,
                           size - (blocks - k) * kMinColumnsPerBlock);
  }
  return bounds;
}

// The largest block of `bounds`.
int64_t Widest(const std::vector<int64_t>& bounds) {
  int64_t widest = 0;
  for (size_t k = 1; k < bounds.size(); ++k) widest = std::max(widest, bounds[k] - bounds[k - 1]);
  return widest;
}

// Runs work(first, count) on each block of `bounds`; the calling thread takes the first.
template <typename Work>
void ForEachBlock(OpKernelContext* context, const std::vector<int64_t>& bounds,
                  const Work& work) {
  auto* pool = context->device()->tensorflow_cpu_worker_threads()->workers;
  const int64_t blocks = bounds.size() - 1;
  tensorflow::BlockingCounter done(blocks - 1);
  for (int64_t k = 1; k < blocks; ++k) {
    pool->Schedule([&work, &done, &bounds, k] {
      work(bounds[k], bounds[k + 1] - bounds[k]);
      done.DecrementCount();
    });
  }
  work(bounds[0], bounds[1] - bounds[0]);
  done.Wait();
}

template <typename Work>
void ForEachBlock(OpKernelContext* context, int64_t size, const Work& work) {
  const int64_t threads = context->device()->tensorflow_cpu_worker_threads()->workers->NumThreads();
  ForEachBlock(context, BlockBounds(threads, size, nullptr), work);
}

// The optional mask keep [T, B]: kept(t, b), the span [lo, hi) of a block's kept rows at step t,
// and blocks of about equal kept steps.
class Mask {
 public:
  Mask(const Tensor& keep, int64_t steps, int64_t batch)
      : data_(keep.NumElements() == 0 ? nullptr : keep.flat<bool>().data()), batch_(batch) {
    if (data_ == nullptr) return;
    kept_steps_.assign(batch, 0);
    for (int64_t t = 0; t < steps; ++t) {
      for (int64_t b = 0; b < batch; ++b) kept_steps_[b] += data_[t * batch + b];
    }
  }

  bool kept(int64_t t, int64_t b) const { return data_ == nullptr || data_[t * batch_ + b]; }

  // [lo, hi) ⊆ [first, first + count): the kept rows of step t lie inside it.
  std::pair<int64_t, int64_t> span(int64_t t, int64_t first, int64_t count) const {
    int64_t lo = first, hi = first + count;
    if (data_ == nullptr) return {lo, hi};
    while (lo < hi && !kept(t, lo)) ++lo;
    while (hi > lo && !kept(t, hi - 1)) --hi;
    return {lo, hi};
  }

  std::vector<int64_t> bounds(OpKernelContext* context) const {
    const int64_t threads =
        context->device()->tensorflow_cpu_worker_threads()->workers->NumThreads();
    return BlockBounds(threads, batch_, data_ == nullptr ? nullptr : &kept_steps_);
  }

 private:
  const bool* data_;
  int64_t batch_;
  std::vector<int64_t> kept_steps_;
};

bool ValidMask(const Tensor& keep, int64_t steps, int64_t batch) {
  return keep.NumElements() == 0 ||
         (keep.dims() == 2 && keep.dim_size(0) == steps && keep.dim_size(1) == batch);
}

// Raw pointers of step t's column b in a [T, B, width] tensor.
struct Columns {
  float* data;
  int64_t batch, width;
  float* at(int64_t t, int64_t b) const { return data + (t * batch + b) * width; }
};

// Per-thread work space of ForwardColumn, allocated once per block rather than per column.
struct Scratch {
  explicit Scratch(int64_t units)
      : gates(4 * units), s(units), o(units), tanh_c(units) {}
  Array gates, s, o, tanh_c;
};

// One kept forward step of one column: z_r = Uᵀ r (R rows), z_x [4H] and c_{t-1} → h_t, c_t and
// the factors a [4H], a_c [H], f' [H].
template <Cell kCell>
void ForwardColumn(int64_t units, const float* z_r, const float* z_x, const float* c_prev_data,
                   const float* peephole, float* h, float* c, float* a_data, float* a_c,
                   float* carry, Scratch& scratch) {
  const int64_t H = units;
  const ConstColumn r(z_r, kCell == Cell::kMatrix ? 3 * H : 4 * H), x(z_x, 4 * H);
  const ConstColumn c_prev(c_prev_data, H);
  Column a(a_data, 4 * H), c_t(c, H), h_t(h, H), a_c_t(a_c, H), carry_t(carry, H);
  Array& tanh_c = scratch.tanh_c;
  if constexpr (kCell == Cell::kMatrix) {
    auto gates = scratch.gates.head(3 * H);
    gates = Sigmoid(r + x.head(3 * H));
    scratch.s = Sigmoid(x.tail(H));
    const auto f = gates.head(H), i = gates.segment(H, H), o = gates.tail(H);
    const Array& s = scratch.s;
    c_t = s * i + c_prev * f;
    tanh_c = c_t.tanh();
    a.head(H) = c_prev * f * (1 - f);
    a.segment(H, H) = s * i * (1 - i);
    a.segment(2 * H, H) = tanh_c * o * (1 - o);
    a.tail(H) = i * s * (1 - s);
    h_t = tanh_c * o;
    a_c_t = o * (1 - tanh_c * tanh_c);
    carry_t = f;
  } else {
    // gates: [σ(z_i); σ(z_f); tanh z_g], then o.
    auto sigma_if = scratch.gates.head(2 * H);
    sigma_if = r.head(2 * H) + x.head(2 * H);
    if constexpr (kCell == Cell::kClassic) {
      sigma_if.head(H) += ConstColumn(peephole, H) * c_prev;
      sigma_if.tail(H) += ConstColumn(peephole + H, H) * c_prev;
    }
    sigma_if = Sigmoid(sigma_if);
    auto g = scratch.gates.segment(2 * H, H);
    g = (r.segment(2 * H, H) + x.segment(2 * H, H)).tanh();
    const auto i = sigma_if.head(H), f = sigma_if.tail(H);
    c_t = g * i + c_prev * f;
    Array& o = scratch.o;
    o = r.tail(H) + x.tail(H);
    if constexpr (kCell == Cell::kClassic) o += ConstColumn(peephole + 2 * H, H) * c_t;
    o = Sigmoid(o);
    tanh_c = c_t.tanh();
    a.head(H) = g * i * (1 - i);
    a.segment(H, H) = c_prev * f * (1 - f);
    a.segment(2 * H, H) = i * (1 - g * g);
    a.tail(H) = tanh_c * o * (1 - o);
    h_t = tanh_c * o;
    a_c_t = o * (1 - tanh_c * tanh_c);
    carry_t = f;
    if constexpr (kCell == Cell::kClassic) {
      a_c_t += a.tail(H) * ConstColumn(peephole + 2 * H, H);
      carry_t += a.head(H) * ConstColumn(peephole, H) +
                 a.segment(H, H) * ConstColumn(peephole + H, H);
    }
  }
}

// An op kernel with the attr `cell`: Compute runs Derived::Run<cell>.
template <typename Derived>
class CellOp : public OpKernel {
 public:
  explicit CellOp(OpKernelConstruction* context) : OpKernel(context) {
    std::string name;
    OP_REQUIRES_OK(context, context->GetAttr("cell", &name));
    cell_ = name == "classic" ? Cell::kClassic : name == "matrix" ? Cell::kMatrix : Cell::kLstm;
  }

  void Compute(OpKernelContext* context) override {
    auto* self = static_cast<Derived*>(this);
    switch (cell_) {
      case Cell::kLstm: return self->template Run<Cell::kLstm>(context);
      case Cell::kClassic: return self->template Run<Cell::kClassic>(context);
      case Cell::kMatrix: return self->template Run<Cell::kMatrix>(context);
    }
  }

 private:
  Cell cell_ = Cell::kLstm;
};

class RecurrenceOp : public CellOp<RecurrenceOp> {
 public:
  using CellOp::CellOp;

  template <Cell kCell>
  void Run(OpKernelContext* context) {
    // Either z_x = W x + b itself [T, B, 4H] (kernel [0]), or x [T, B, I] with W [I, 4H], b [4H]:
    // then each step takes Wᵀ x + b of its block in the loop, and z_x is never stored.
    const Tensor& inputs = context->input(0);
    const Tensor& kernel = context->input(1);
    const Tensor& bias = context->input(2);
    const Tensor& recurrent = context->input(3);  // U [H, 4H], "matrix" [H, 3H]
    const Tensor& peephole = context->input(4);   // p [3H] ("classic") or [0]
    const Tensor& h0 = context->input(5);         // [B, H]
    const Tensor& c0 = context->input(6);         // [B, H]
    const Tensor& keep = context->input(7);       // [T, B] bool or [0]
    const int64_t recurrent_blocks = kCell == Cell::kMatrix ? 3 : 4;
    OP_REQUIRES(context, inputs.dims() == 3 && recurrent.dims() == 2 &&
                             recurrent.dim_size(1) == recurrent_blocks * recurrent.dim_size(0),
                tensorflow::errors::InvalidArgument("expected inputs [T, B, F] and U [H, kH]"));
    const int64_t steps = inputs.dim_size(0), batch = inputs.dim_size(1);
    const int64_t units = recurrent.dim_size(0), gates = 4 * units;
    const int64_t rows = recurrent_blocks * units, features = inputs.dim_size(2);
    const bool projected = kernel.NumElements() == 0;
    OP_REQUIRES(context,
                projected ? features == gates
                          : kernel.dims() == 2 && kernel.dim_size(0) == features &&
                                kernel.dim_size(1) == gates && bias.NumElements() == gates,
                tensorflow::errors::InvalidArgument(
                    "expected z_x [T, B, 4H], or x [T, B, I] with W [I, 4H] and b [4H]"));
    OP_REQUIRES(context, peephole.NumElements() == (kCell == Cell::kClassic ? 3 * units : 0),
                tensorflow::errors::InvalidArgument("expected p [3H] for classic, else [0]"));
    OP_REQUIRES(context, ValidMask(keep, steps, batch),
                tensorflow::errors::InvalidArgument("expected keep [T, B] or [0]"));
    const TensorShape per_step({steps, batch, units});
    Tensor *h, *c, *factors, *c_factors, *carry;
    OP_REQUIRES_OK(context, context->allocate_output(0, per_step, &h));
    OP_REQUIRES_OK(context, context->allocate_output(1, per_step, &c));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, TensorShape({steps, batch, gates}), &factors));
    OP_REQUIRES_OK(context, context->allocate_output(3, per_step, &c_factors));
    OP_REQUIRES_OK(context, context->allocate_output(4, per_step, &carry));
    const float* x = inputs.flat<float>().data();
    const float* p = peephole.flat<float>().data();
    const Columns hs{h->flat<float>().data(), batch, units};
    const Columns cs{c->flat<float>().data(), batch, units};
    const Columns a{factors->flat<float>().data(), batch, gates};
    const Columns a_c{c_factors->flat<float>().data(), batch, units};
    const Columns f{carry->flat<float>().data(), batch, units};
    const float* h0_data = h0.flat<float>().data();
    const float* c0_data = c0.flat<float>().data();
    const Mask mask(keep, steps, batch);
    const std::vector<int64_t> bounds = mask.bounds(context);
    // Uᵀ [kH, H]: U [H, kH] row-major read column-major.
    const PackedLhs recurrent_packed = PackedLhs::Pack<Eigen::ColMajor>(
        recurrent.flat<float>().data(), rows, rows, units, Widest(bounds));

    ForEachBlock(context, bounds, [&](int64_t first, int64_t count) {
      Matrix z(rows, count), z_x(projected ? 0 : gates, count);
      Scratch scratch(units);
      Eigen::VectorXf rhs_buffer(recurrent_packed.rhs_buffer_size());
      for (int64_t t = 0; t < steps; ++t) {
        const float* h_prev = t == 0 ? h0_data : hs.at(t - 1, 0);
        const float* c_prev = t == 0 ? c0_data : cs.at(t - 1, 0);
        const float* read = kCell == Cell::kMatrix ? c_prev : h_prev;  // what U multiplies
        const auto [lo, hi] = mask.span(t, first, count);
        if (hi > lo) {
          z.leftCols(hi - lo).setZero();
          recurrent_packed.AddProduct(z.leftCols(hi - lo), read + lo * units, units, rhs_buffer);
          if (!projected) {  // Wᵀ x + b: W [I, 4H] row-major is Wᵀ column-major
            auto z_x_span = z_x.leftCols(hi - lo);
            z_x_span.noalias() =
                ConstMatrixMap(kernel.flat<float>().data(), gates, features) *
                ConstMatrixMap(x + (t * batch + lo) * features, features, hi - lo);
            z_x_span.colwise() += Eigen::Map<const Eigen::VectorXf>(bias.flat<float>().data(),
                                                                    gates);
          }
        }
        for (int64_t b = first; b < first + count; ++b) {
          if (!mask.kept(t, b)) {
            Column(hs.at(t, b), units) = ConstColumn(h_prev + b * units, units);
            Column(cs.at(t, b), units) = ConstColumn(c_prev + b * units, units);
            continue;
          }
          const float* z_x_b = projected ? x + (t * batch + b) * gates : z_x.col(b - lo).data();
          ForwardColumn<kCell>(units, z.col(b - lo).data(), z_x_b,
                               c_prev + b * units, p, hs.at(t, b), cs.at(t, b), a.at(t, b),
                               a_c.at(t, b), f.at(t, b), scratch);
        }
      }
    });
  }
};

class RecurrenceGradOp : public CellOp<RecurrenceGradOp> {
 public:
  using CellOp::CellOp;

  template <Cell kCell>
  void Run(OpKernelContext* context) {
    const Tensor& d_h = context->input(0);        // ∂L/∂h_t [T, B, H]
    const Tensor& d_h_last = context->input(1);   // ∂L/∂h_T [B, H]
    const Tensor& d_c_last = context->input(2);   // ∂L/∂c_T [B, H]
    const Tensor& recurrent = context->input(3);  // U [H, 4H], "matrix" [H, 3H]
    const Tensor& factors = context->input(4);    // a [T, B, 4H]
    const Tensor& c_factors = context->input(5);  // a_c [T, B, H]
    const Tensor& carry = context->input(6);      // f' [T, B, H]
    const Tensor& keep = context->input(7);       // [T, B] bool or [0]
    const Tensor& cells = context->input(8);      // c_t [T, B, H] (read by "classic")
    const Tensor& c0 = context->input(9);         // c_0 [B, H]
    const Tensor& inputs = context->input(10);    // x [T, B, I] if W x + b was formed in the loop
    const Tensor& kernel = context->input(11);    // W [I, 4H] then, else [0]
    OP_REQUIRES(context, d_h.dims() == 3 && factors.dims() == 3 &&
                             d_h.dim_size(0) == factors.dim_size(0) &&
                             d_h.dim_size(1) == factors.dim_size(1),
                tensorflow::errors::InvalidArgument("expected d_h [T, B, H], a [T, B, 4H]"));
    const int64_t steps = d_h.dim_size(0), batch = d_h.dim_size(1);
    const int64_t units = recurrent.dim_size(0), gates = 4 * units;
    const int64_t rows = recurrent.dim_size(1);  // 4H, or 3H for "matrix"
    OP_REQUIRES(context, ValidMask(keep, steps, batch),
                tensorflow::errors::InvalidArgument("expected keep [T, B] or [0]"));
    const bool with_inputs = kernel.NumElements() > 0;
    const int64_t features = with_inputs ? kernel.dim_size(0) : 0;
    OP_REQUIRES(context,
                !with_inputs || (inputs.dims() == 3 && inputs.dim_size(0) == steps &&
                                 inputs.dim_size(1) == batch && inputs.dim_size(2) == features &&
                                 kernel.dims() == 2 && kernel.dim_size(1) == gates),
                tensorflow::errors::InvalidArgument("expected x [T, B, I] and W [I, 4H]"));
    Tensor *d_z, *d_h0, *d_c0, *d_peephole, *d_inputs, *d_kernel_bias;
    OP_REQUIRES_OK(context, context->allocate_output(0, factors.shape(), &d_z));
    OP_REQUIRES_OK(context, context->allocate_output(1, d_c_last.shape(), &d_h0));
    OP_REQUIRES_OK(context, context->allocate_output(2, d_c_last.shape(), &d_c0));
    OP_REQUIRES_OK(context,
                   context->allocate_output(
                       3, TensorShape({kCell == Cell::kClassic ? 3 * units : 0}), &d_peephole));
    // With x: δx = W δz, and [∂W; ∂bᵀ] = Σ [x; 1] δzᵀ, while δz is at hand (no pass over δZ).
    OP_REQUIRES_OK(context, context->allocate_output(
                                4, TensorShape({with_inputs ? steps : 0, batch, features}),
                                &d_inputs));
    OP_REQUIRES_OK(context,
                   context->allocate_output(
                       5, TensorShape({with_inputs ? features + 1 : 0, gates}), &d_kernel_bias));
    const float* x = inputs.flat<float>().data();
    const float* w = kernel.flat<float>().data();
    float* d_x = d_inputs->flat<float>().data();
    Column d_wb(d_kernel_bias->flat<float>().data(), d_kernel_bias->NumElements());
    const float* d_h_data = d_h.flat<float>().data();
    const auto d_h_at = [&](int64_t t, int64_t b) { return d_h_data + (t * batch + b) * units; };
    const Columns a{const_cast<float*>(factors.flat<float>().data()), batch, gates};
    const Columns a_c{const_cast<float*>(c_factors.flat<float>().data()), batch, units};
    const Columns f{const_cast<float*>(carry.flat<float>().data()), batch, units};
    const Columns cs{const_cast<float*>(cells.flat<float>().data()), batch, units};
    const float* c0_data = c0.flat<float>().data();
    const Columns d_zs{d_z->flat<float>().data(), batch, gates};
    // carry_h: the gradient reaching h_{t-1} from later steps, at last δh_0.
    MatrixMap d_h_carry(d_h0->flat<float>().data(), units, batch);
    MatrixMap d_c(d_c0->flat<float>().data(), units, batch);
    d_h_carry = ConstMatrixMap(d_h_last.flat<float>().data(), units, batch);
    d_c = ConstMatrixMap(d_c_last.flat<float>().data(), units, batch);
    Column d_p(d_peephole->flat<float>().data(), d_peephole->NumElements());
    const Mask mask(keep, steps, batch);
    const std::vector<int64_t> bounds = mask.bounds(context);
    // U [H, kH]: its row-major data read row-major.
    const PackedLhs recurrent_packed = PackedLhs::Pack<Eigen::RowMajor>(
        recurrent.flat<float>().data(), rows, units, rows, Widest(bounds));
    // ∂p of each block, added up in block order afterwards: the same sum on every run.
    std::vector<Array> d_p_blocks(bounds.size() - 1, Array::Zero(d_p.size()));
    std::vector<Array> d_wb_blocks(bounds.size() - 1, Array::Zero(d_wb.size()));
    // The block of δz that multiplies h's gradient: o, which is block 3, or 2 for "matrix".
    const int64_t o_block = kCell == Cell::kMatrix ? 2 : 3;

    ForEachBlock(context, bounds, [&](int64_t first, int64_t count) {
      Array d_h_b(units);
      Eigen::VectorXf rhs_buffer(recurrent_packed.rhs_buffer_size());
      const int64_t block = std::upper_bound(bounds.begin(), bounds.end() - 1, first) -
                            bounds.begin() - 1;  // blocks are never empty unless B = 0
      Array& d_p_block = d_p_blocks[std::max<int64_t>(0, block)];
      Array& d_wb_block = d_wb_blocks[std::max<int64_t>(0, block)];
      for (int64_t t = steps - 1; t >= 0; --t) {
        for (int64_t b = first; b < first + count; ++b) {
          auto carry_h = d_h_carry.col(b).array();
          if (!mask.kept(t, b)) {  // h_t = h_{t-1}, c_t = c_{t-1}: pass both gradients on
            carry_h += ConstColumn(d_h_at(t, b), units);
            Column(d_zs.at(t, b), gates).setZero();
            if (with_inputs) Column(d_x + (t * batch + b) * features, features).setZero();
            continue;
          }
          d_h_b = ConstColumn(d_h_at(t, b), units) + carry_h;
          carry_h.setZero();
          auto d_c_b = d_c.col(b).array();
          d_c_b += d_h_b * ConstColumn(a_c.at(t, b), units);
          const ConstColumn a_b(a.at(t, b), gates);
          Column d_z_b(d_zs.at(t, b), gates);
          for (int64_t k = 0; k < 4; ++k) {
            d_z_b.segment(k * units, units) =
                (k == o_block ? d_h_b : d_c_b) * a_b.segment(k * units, units);
          }
          if constexpr (kCell == Cell::kClassic) {
            const ConstColumn c_prev(t == 0 ? c0_data + b * units : cs.at(t - 1, b), units);
            d_p_block.head(units) += d_z_b.head(units) * c_prev;
            d_p_block.segment(units, units) += d_z_b.segment(units, units) * c_prev;
            d_p_block.tail(units) += d_z_b.tail(units) * ConstColumn(cs.at(t, b), units);
          }
          if (with_inputs) {
            const float* x_b = x + (t * batch + b) * features;
            float* d_x_b = d_x + (t * batch + b) * features;
            for (int64_t i = 0; i < features; ++i) {
              d_x_b[i] = (ConstColumn(w + i * gates, gates) * d_z_b).sum();
              d_wb_block.segment(i * gates, gates) += x_b[i] * d_z_b;
            }
            d_wb_block.tail(gates) += d_z_b;
          }
          d_c_b *= ConstColumn(f.at(t, b), units);
        }
        const auto [lo, hi] = mask.span(t, first, count);
        if (hi == lo) continue;
        // δz of the rows in [lo, hi) that were not kept is zero: adding U δz leaves them as is.
        // δz [kH, n] with outer stride 4H.
        recurrent_packed.AddProduct(
            (kCell == Cell::kMatrix ? d_c : d_h_carry).middleCols(lo, hi - lo), d_zs.at(t, lo),
            gates, rhs_buffer);
      }
    });
    d_p.setZero();
    for (const Array& d_p_block : d_p_blocks) d_p += d_p_block;
    d_wb.setZero();
    for (const Array& d_wb_block : d_wb_blocks) d_wb += d_wb_block;
  }
};

class WeightGradientOp : public OpKernel {
 public:
  explicit WeightGradientOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("columns", &columns_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& inputs = context->input(0);  // [N, F]
    const Tensor& d_z = context->input(1);     // [N, G]; the first `columns` columns are used
    const Tensor& keep = context->input(2);    // [T, B] with N = T·B, or [0]
    OP_REQUIRES(context, inputs.dims() == 2 && d_z.dims() == 2 &&
                             inputs.dim_size(0) == d_z.dim_size(0) &&
                             columns_ <= d_z.dim_size(1),
                tensorflow::errors::InvalidArgument("expected inputs [N, F] and d_z [N, G]"));
    const int64_t rows = inputs.dim_size(0), features = inputs.dim_size(1);
    const int64_t stride = d_z.dim_size(1), gates = columns_ < 0 ? stride : columns_;
    const bool masked = keep.NumElements() > 0;
    OP_REQUIRES(context, !masked || (keep.dims() == 2 && keep.NumElements() == rows),
                tensorflow::errors::InvalidArgument("expected keep [T, B] with T·B = N"));
    const int64_t steps = masked ? keep.dim_size(0) : 1, batch = rows / std::max<int64_t>(1, steps);
    Tensor* gradient;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, TensorShape({features, gates}), &gradient));
    // Column-major, the row-major operands are Xᵀ [F, N] and δZᵀ [G, N], the result ∂ᵀ [G, F].
    // With a mask, step t adds only the span of its kept rows (δz is zero on the others).
    const float* inputs_data = inputs.flat<float>().data();
    const float* d_z_data = d_z.flat<float>().data();
    MatrixMap gradient_t(gradient->flat<float>().data(), gates, features);
    gradient_t.setZero();
    const Mask mask(keep, steps, batch);
    ForEachBlock(context, gates, [&](int64_t first, int64_t count) {
      ProductWorkspace product(count, features, batch);
      for (int64_t t = 0; t < steps; ++t) {
        const auto [lo, hi] = mask.span(t, 0, batch);
        if (hi == lo) continue;
        const int64_t row = t * batch + lo;
        const ConstMatrixMap inputs_t(inputs_data + row * features, features, hi - lo);
        const StridedMatrixMap d_z_t(d_z_data + row * stride, gates, hi - lo,
                                     Eigen::OuterStride<>(stride));
        product.AddProduct(gradient_t.middleRows(first, count), d_z_t.middleRows(first, count),
                           inputs_t.transpose());
      }
    });
  }

 private:
  int64_t columns_;
};

REGISTER_OP("SeqgraphRecurrence")
    .Attr("cell: {'lstm', 'classic', 'matrix'}")
    .Input("inputs: float")
    .Input("kernel: float")
    .Input("bias: float")
    .Input("recurrent_kernel: float")
    .Input("peephole: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("keep: bool")
    .Output("h: float")
    .Output("c: float")
    .Output("factors: float")
    .Output("c_factors: float")
    .Output("carry: float")
    .SetShapeFn([](InferenceContext* c) {
      const auto steps = c->Dim(c->input(0), 0), batch = c->Dim(c->input(0), 1);
      const auto units = c->Dim(c->input(3), 0);
      tensorflow::shape_inference::DimensionHandle gates;
      TF_RETURN_IF_ERROR(c->Multiply(units, 4, &gates));
      const auto per_step = c->MakeShape({steps, batch, units});
      c->set_output(0, per_step);
      c->set_output(1, per_step);
      c->set_output(2, c->MakeShape({steps, batch, gates}));
      c->set_output(3, per_step);
      c->set_output(4, per_step);
      return absl::OkStatus();
    })
    .Doc("Forward loop of an LSTM-family layer: h_t, c_t and the factors of the backward loop.");

REGISTER_OP("SeqgraphRecurrenceGrad")
    .Attr("cell: {'lstm', 'classic', 'matrix'}")
    .Input("d_h: float")
    .Input("d_h_last: float")
    .Input("d_c_last: float")
    .Input("recurrent_kernel: float")
    .Input("factors: float")
    .Input("c_factors: float")
    .Input("carry: float")
    .Input("keep: bool")
    .Input("cells: float")
    .Input("c0: float")
    .Input("inputs: float")
    .Input("kernel: float")
    .Output("d_z: float")
    .Output("d_h0: float")
    .Output("d_c0: float")
    .Output("d_peephole: float")
    .Output("d_inputs: float")
    .Output("d_kernel_bias: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(4));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(2));
      c->set_output(3, c->Vector(InferenceContext::kUnknownDim));
      c->set_output(4, c->UnknownShapeOfRank(3));
      c->set_output(5, c->UnknownShapeOfRank(2));
      return absl::OkStatus();
    })
    .Doc("Backward loop of an LSTM-family layer: δz for every step, δh_0, δc_0, ∂p, and with "
         "x and W also δx and [∂W; ∂bᵀ].");

REGISTER_OP("SeqgraphWeightGradient")
    .Attr("columns: int = -1")
    .Input("inputs: float")
    .Input("d_z: float")
    .Input("keep: bool")
    .Output("gradient: float")
    .SetShapeFn([](InferenceContext* c) {
      int64_t columns;
      TF_RETURN_IF_ERROR(c->GetAttr("columns", &columns));
      c->set_output(0, c->Matrix(c->Dim(c->input(0), 1),
                                 columns < 0 ? c->Dim(c->input(1), 1) : c->MakeDim(columns)));
      return absl::OkStatus();
    })
    .Doc("inputsᵀ d_z[:, :columns] for inputs [N, F] and d_z [N, G], N = T·B: the weight "
         "gradient, over the spans of the kept rows of each step if keep [T, B] is given.");

REGISTER_KERNEL_BUILDER(Name("SeqgraphRecurrence").Device(tensorflow::DEVICE_CPU), RecurrenceOp);
REGISTER_KERNEL_BUILDER(Name("SeqgraphRecurrenceGrad").Device(tensorflow::DEVICE_CPU),
                        RecurrenceGradOp);
REGISTER_KERNEL_BUILDER(Name("SeqgraphWeightGradient").Device(tensorflow::DEVICE_CPU),
                        WeightGradientOp);

}  // namespace
}  // namespace seqgraph
