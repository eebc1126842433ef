//! Architectures and seeded random initialisation.
//!
//! Two initialisations: [`Init::Paper`], the random nets of the paper's appendix B.1
//! (weights N(0, std 1/sqrt(fan_in)), biases N(0, 1)), and [`Init::Standard`], PyTorch's
//! default for training (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))). The
//! random stream is ChaCha8 seeded from a `u64`, stable across platforms and releases.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::error::{NetworkError, Result};
use crate::model::{Layer, Model};
use crate::shape::Shape;

/// A layer without weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSpec {
    Dense {
        out: usize,
    },
    Conv2d {
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    Relu,
    Flatten,
}

/// A network shape without weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    pub input_shape: Shape,
    pub layers: Vec<LayerSpec>,
}

/// How to draw the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Appendix B.1: weights N(0, std 1/sqrt(fan_in)), biases N(0, 1).
    Paper,
    /// PyTorch's default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Standard,
}

impl Architecture {
    /// A multilayer perceptron `n_0-n_1-..-n_L` with ReLU between the dense layers.
    pub fn mlp(widths: &[usize]) -> Architecture {
        let mut layers = Vec::new();
        for (i, &w) in widths.iter().enumerate().skip(1) {
            if i > 1 {
                layers.push(LayerSpec::Relu);
            }
            layers.push(LayerSpec::Dense { out: w });
        }
        Architecture {
            input_shape: Shape::Flat(widths.first().copied().unwrap_or(0)),
            layers,
        }
    }

    /// The paper's MNIST model: Conv(1->16, 4x4, s2, p1), ReLU, Conv(16->32, 4x4, s2, p1),
    /// ReLU, Flatten, Dense(1568->100), ReLU, Dense(100->10).
    pub fn mnist_conv() -> Architecture {
        Architecture {
            input_shape: Shape::Image { c: 1, h: 28, w: 28 },
            layers: vec![
                LayerSpec::Conv2d {
                    out_channels: 16,
                    kernel: 4,
                    stride: 2,
                    padding: 1,
                },
                LayerSpec::Relu,
                LayerSpec::Conv2d {
                    out_channels: 32,
                    kernel: 4,
                    stride: 2,
                    padding: 1,
                },
                LayerSpec::Relu,
                LayerSpec::Flatten,
                LayerSpec::Dense { out: 100 },
                LayerSpec::Relu,
                LayerSpec::Dense { out: 10 },
            ],
        }
    }

    /// Convolutions `(out_channels, kernel, stride, padding)` each followed by a ReLU, a
    /// flatten, then dense layers of the given widths with ReLUs between them.
    pub fn conv_net(
        input_shape: Shape,
        convs: &[(usize, usize, usize, usize)],
        dense: &[usize],
    ) -> Architecture {
        let mut layers = Vec::new();
        for &(out_channels, kernel, stride, padding) in convs {
            layers.push(LayerSpec::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
            });
            layers.push(LayerSpec::Relu);
        }
        layers.push(LayerSpec::Flatten);
        for (i, &d) in dense.iter().enumerate() {
            if i > 0 {
                layers.push(LayerSpec::Relu);
            }
            layers.push(LayerSpec::Dense { out: d });
        }
        Architecture {
            input_shape,
            layers,
        }
    }

    /// Parses `mnist-conv` or `mlp:784-100-100-10`.
    pub fn parse(spec: &str) -> Result<Architecture> {
        let err = |msg: &str| NetworkError::Architecture {
            spec: spec.to_string(),
            msg: msg.to_string(),
        };
        if spec == "mnist-conv" {
            return Ok(Architecture::mnist_conv());
        }
        if let Some(rest) = spec.strip_prefix("mlp:") {
            let widths: Vec<usize> = rest
                .split('-')
                .map(|w| w.trim().parse::<usize>().ok().filter(|&w| w > 0))
                .collect::<Option<_>>()
                .ok_or_else(|| err("widths must be positive integers separated by '-'"))?;
            if widths.len() < 2 {
                return Err(err("an MLP needs at least an input and an output width"));
            }
            return Ok(Architecture::mlp(&widths));
        }
        Err(err(
            "expected \"mnist-conv\" or \"mlp:W0-W1-...-WL\" (for example mlp:784-100-100-10)",
        ))
    }

    /// Draws weights for this architecture.
    pub fn init(&self, init: Init, seed: u64) -> Result<Model> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut shape = self.input_shape;
        let mut layers = Vec::with_capacity(self.layers.len());
        for spec in &self.layers {
            let layer = match *spec {
                LayerSpec::Relu => Layer::Relu,
                LayerSpec::Flatten => Layer::Flatten,
                LayerSpec::Dense { out } => {
                    let fan_in = shape.numel();
                    let (weight, bias) = draw(&mut rng, init, fan_in, out * fan_in, out);
                    Layer::Dense {
                        weight,
                        bias,
                        out_features: out,
                        in_features: fan_in,
                    }
                }
                LayerSpec::Conv2d {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                } => {
                    let in_channels = match shape {
                        Shape::Image { c, .. } => c,
                        Shape::Flat(_) => 1,
                    };
                    let fan_in = in_channels * kernel * kernel;
                    let (weight, bias) =
                        draw(&mut rng, init, fan_in, out_channels * fan_in, out_channels);
                    Layer::Conv2d {
                        weight,
                        bias,
                        out_channels,
                        in_channels,
                        kernel_h: kernel,
                        kernel_w: kernel,
                        stride,
                        padding,
                    }
                }
            };
            // Track the shape so the next layer's fan-in is right; Model::new re-checks.
            shape = next_shape(shape, spec);
            layers.push(layer);
        }
        Model::new(self.input_shape, layers)
    }
}

fn next_shape(shape: Shape, spec: &LayerSpec) -> Shape {
    match (*spec, shape) {
        (LayerSpec::Dense { out }, _) => Shape::Flat(out),
        (LayerSpec::Flatten, s) => Shape::Flat(s.numel()),
        (LayerSpec::Relu, s) => s,
        (
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
            },
            Shape::Image { h, w, .. },
        ) => {
            let od = |d: usize| {
                crate::ops::ConvGeometry::out_dim(d, kernel, stride, padding).unwrap_or(1)
            };
            Shape::Image {
                c: out_channels,
                h: od(h),
                w: od(w),
            }
        }
        (LayerSpec::Conv2d { .. }, s) => s,
    }
}

fn draw(
    rng: &mut impl Rng,
    init: Init,
    fan_in: usize,
    nw: usize,
    nb: usize,
) -> (Vec<f64>, Vec<f64>) {
    let scale = 1.0 / (fan_in.max(1) as f64).sqrt();
    match init {
        Init::Paper => {
            let w = Normal::new(0.0, scale).expect("positive std");
            let b = Normal::new(0.0, 1.0).expect("positive std");
            (
                (0..nw).map(|_| w.sample(rng)).collect(),
                (0..nb).map(|_| b.sample(rng)).collect(),
            )
        }
        Init::Standard => {
            let u = Uniform::new_inclusive(-scale, scale).expect("valid range");
            (
                (0..nw).map(|_| u.sample(rng)).collect(),
                (0..nb).map(|_| u.sample(rng)).collect(),
            )
        }
    }
}

/// A random residual network (a graph model, see [`crate::graph`]) for tests and
/// experiments: an optional input normalisation (`normalise`: a diagonal affine map,
/// dense or 1x1 conv, feeding the stem with no ReLU between), a stem (dense of `width`
/// units, or for an image input a 3x3 conv of `width` channels, stride 1, padding 1) and
/// its ReLU, then `blocks` residual blocks `z <- relu(z + W_b relu(W_a z + b_a) + b_b)`
/// (dense or 3x3 conv as the stem), then a flatten (images) and a dense head of `outputs`
/// units. Weights drawn as [`Architecture::init`] draws them, from one seeded stream.
///
/// Errors: a zero size.
pub fn residual_net(
    input_shape: Shape,
    width: usize,
    blocks: usize,
    outputs: usize,
    normalise: bool,
    init: Init,
    seed: u64,
) -> Result<Model> {
    use crate::model::{Node, Source};
    if width == 0 || outputs == 0 || input_shape.numel() == 0 {
        return Err(NetworkError::Architecture {
            spec: format!("residual {input_shape} width {width} outputs {outputs}"),
            msg: "sizes must be positive".into(),
        });
    }
    // Refuse sizes whose parameters could not be held (a typo such as 99999999999 blocks
    // must be an error, not a machine out of memory): at most 2^28 parameters.
    let params = residual_parameters(input_shape, width, blocks, outputs, normalise);
    if params.is_none_or(|p| p > MAX_RESIDUAL_PARAMETERS) {
        return Err(NetworkError::Architecture {
            spec: format!("residual {input_shape} width {width} blocks {blocks} outputs {outputs}"),
            msg: "more than 2^28 parameters; choose fewer or narrower blocks".into(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nodes: Vec<Node> = Vec::new();
    let push = |nodes: &mut Vec<Node>, name: String, layer: Layer, inputs: Vec<Source>| {
        nodes.push(Node {
            name,
            layer,
            inputs,
        });
        Source::Node(nodes.len() - 1)
    };
    // A dense or 3x3 conv map reading `from` (of `in_size` units or `in_c` channels).
    let image = matches!(input_shape, Shape::Image { .. });
    let affine = |rng: &mut ChaCha8Rng, in_c: usize| -> Layer {
        if image {
            let fan_in = in_c * 9;
            let (weight, bias) = draw(rng, init, fan_in, width * fan_in, width);
            Layer::Conv2d {
                weight,
                bias,
                out_channels: width,
                in_channels: in_c,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                padding: 1,
            }
        } else {
            let (weight, bias) = draw(rng, init, in_c, width * in_c, width);
            Layer::Dense {
                weight,
                bias,
                out_features: width,
                in_features: in_c,
            }
        }
    };
    let in_c = match input_shape {
        Shape::Image { c, .. } => c,
        Shape::Flat(n) => n,
    };
    let mut cur = Source::Input;
    if normalise {
        // x -> s * x + m per input unit (dense) or channel (1x1 conv), s in [0.5, 2].
        let scales: Vec<f64> = (0..in_c).map(|_| rng.random_range(0.5..2.0)).collect();
        let shifts: Vec<f64> = (0..in_c).map(|_| rng.random_range(-0.5..0.5)).collect();
        let mut weight = vec![0.0; in_c * in_c];
        for (i, s) in scales.iter().enumerate() {
            weight[i * in_c + i] = *s;
        }
        let layer = if image {
            Layer::Conv2d {
                weight,
                bias: shifts,
                out_channels: in_c,
                in_channels: in_c,
                kernel_h: 1,
                kernel_w: 1,
                stride: 1,
                padding: 0,
            }
        } else {
            Layer::Dense {
                weight,
                bias: shifts,
                out_features: in_c,
                in_features: in_c,
            }
        };
        cur = push(&mut nodes, "normalise".into(), layer, vec![cur]);
    }
    let stem = affine(&mut rng, in_c);
    cur = push(&mut nodes, "stem".into(), stem, vec![cur]);
    cur = push(&mut nodes, "stem_relu".into(), Layer::Relu, vec![cur]);
    for b in 0..blocks {
        let la = affine(&mut rng, width);
        let a = push(&mut nodes, format!("block{b}_a"), la, vec![cur]);
        let ra = push(&mut nodes, format!("block{b}_a_relu"), Layer::Relu, vec![a]);
        let lb = affine(&mut rng, width);
        let bb = push(&mut nodes, format!("block{b}_b"), lb, vec![ra]);
        let sum = push(
            &mut nodes,
            format!("block{b}_add"),
            Layer::Add,
            vec![cur, bb],
        );
        cur = push(&mut nodes, format!("block{b}_relu"), Layer::Relu, vec![sum]);
    }
    let mut n = width;
    if let Shape::Image { h, w, .. } = input_shape {
        cur = push(&mut nodes, "flatten".into(), Layer::Flatten, vec![cur]);
        n = width * h * w;
    }
    let (weight, bias) = draw(&mut rng, init, n, outputs * n, outputs);
    let head = Layer::Dense {
        weight,
        bias,
        out_features: outputs,
        in_features: n,
    };
    push(&mut nodes, "head".into(), head, vec![cur]);
    Model::from_graph(input_shape, nodes)
}

/// The most parameters [`residual_net`] builds (2^28, 2 GiB of f64).
pub const MAX_RESIDUAL_PARAMETERS: usize = 1 << 28;

/// The number of weights and biases of [`residual_net`] with these sizes (what
/// [`Model::num_parameters`] will count), or `None` when it overflows `usize`.
pub fn residual_parameters(
    input_shape: Shape,
    width: usize,
    blocks: usize,
    outputs: usize,
    normalise: bool,
) -> Option<usize> {
    let (in_c, taps, pixels) = match input_shape {
        Shape::Image { c, h, w } => (c, 9, h * w),
        Shape::Flat(n) => (n, 1, 1),
    };
    // A dense map (or 3x3 conv) of `width` outputs reading `inputs` values (channels).
    let map = |inputs: usize| {
        width
            .checked_mul(inputs)?
            .checked_mul(taps)?
            .checked_add(width)
    };
    let norm = if normalise { in_c * in_c + in_c } else { 0 };
    let head = outputs
        .checked_mul(width.checked_mul(pixels)?)?
        .checked_add(outputs)?;
    map(width)?
        .checked_mul(2)?
        .checked_mul(blocks)?
        .checked_add(map(in_c)?)?
        .checked_add(head)?
        .checked_add(norm)
}

/// A random model from a spec: an [`Architecture::parse`] spec (`mnist-conv`,
/// `mlp:784-100-10`), or a residual network (see [`residual_net`]):
/// `residual:IN-WIDTH-BLOCKS-OUT` with `IN` a size (`784`) or an image (`1x28x28`), and
/// `residual-normalised:...` with an input normalisation before the stem.
///
/// Errors: a malformed spec, naming it.
pub fn init_spec(spec: &str, init: Init, seed: u64) -> Result<Model> {
    let (rest, normalise) = if let Some(r) = spec.strip_prefix("residual:") {
        (r, false)
    } else if let Some(r) = spec.strip_prefix("residual-normalised:") {
        (r, true)
    } else {
        return Architecture::parse(spec)?.init(init, seed);
    };
    let err = || NetworkError::Architecture {
        spec: spec.to_string(),
        msg: "expected residual:IN-WIDTH-BLOCKS-OUT with IN a size (784) or an image (1x28x28), \
              e.g. residual:784-100-2-10"
            .into(),
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let [inp, width, blocks, out] = parts.as_slice() else {
        return Err(err());
    };
    let num = |s: &str| s.trim().parse::<usize>().ok().filter(|&v| v > 0);
    let dims: Vec<usize> = inp
        .split('x')
        .map(num)
        .collect::<Option<_>>()
        .ok_or_else(err)?;
    let shape = Shape::from_dims(&dims).ok_or_else(err)?;
    let (width, out) = (num(width).ok_or_else(err)?, num(out).ok_or_else(err)?);
    let blocks = blocks.trim().parse::<usize>().map_err(|_| err())?;
    residual_net(shape, width, blocks, out, normalise, init, seed)
}
