"""Minimum Margin Loss paper, scheme "Softmax Loss + Range Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020);
§3.1 (experiment details), results in Tables 2, 3, 4 and 5 (row "Range Loss").

Setting (§3.1, "Training data", "Data preprocessing", "Network settings", "Test settings"):
VGGFace2 with test-set overlaps removed (8K identities, 3.05M images), MTCNN-aligned 160×160 RGB
crops, random horizontal flip; Inception-ResNet-v1, 512-d embedding, keep probability 0.4 of the
fully connected layer; batch 90; weight decay 5e-4; learning rate 0.05 divided by 10 every 100K
iterations; 275K iterations (about 30 h on one GTX 1080 Ti).

Loss: eq. 7, softmax + λ·range loss (eqs. 8-11) with n = 2 largest intra-class distances
(§2.2: "n = 2 is the best choice").

Not stated in the paper (our choices, override with --set):
- optimizer: Adam(β1=0.9, β2=0.999, ε=0.1). The paper's TensorFlow setting is, value for value,
  facenet's published VGGFace2 classifier recipe (Inception-ResNet-v1, batch 90, keep 0.4,
  weight decay 5e-4, 512-d, 0.05 ÷10 at 100K/200K, 275K steps, ~30 h), which trains with this
  optimizer.
- the MML paper gives no parameters for this scheme ("all schemes use the same parameter
  settings"): the inter-class margin M of eq. 10 is set to 280, the MML minimum margin, because
  both are a squared Euclidean distance between class centres of the same 512-d features; the
  weight λ = 5e-5 is the centre-loss weight α (both terms are squared distances between features
  and centres); α = β = 1 in eq. 8.

Data: "data/vggface2_tfrecords" is a placeholder. Build it from the VGGFace2 images with
    tfface align VGGFACE2_TRAIN data/vggface2_160 --mode facenet --size 160
    tfface build data/vggface2_160 data/vggface2_tfrecords
Evaluate as the paper does: features of the image and its mirror concatenated (flip "concat"),
Euclidean distance (tfface.eval: flip="concat", metric="euclidean").
Run:
    tfface train mml_range --workdir runs/mml_range
"""

RECIPE = {
    "name": "mml_range",
    "description": "MML paper: softmax + range loss, Inception-ResNet-v1 on VGGFace2",
    "cite": "Wei et al., Minimum Margin Loss (Pattern Recognition 2020), §3.1, Tables 2-5",
    "data": {
        "train": "data/vggface2_tfrecords",
        "num_classes": None,
        "image_size": [160, 160],
        "batch_size": 90,
        "flip": True,
        "random_crop": False,
        "color_jitter": False,
        "val": [],
    },
    "backbone": {"name": "inception_resnet_v1", "embedding_size": 512, "dropout_keep": 0.4},
    "head": {"class": "Softmax", "use_bias": True},
    "loss": {"class": "SparseCategoricalCrossentropy"},
    "aux_losses": {
        "range": {
            "class": "RangeLoss",
            "k": 2,
            "margin": 280.0,
            "alpha": 1.0,
            "beta": 1.0,
            "weight": 5e-5,
        },
    },
    "centres": None,
    "optimizer": {"class": "Adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 0.1},
    "weight_decay": 5e-4,
    "schedule": {
        "learning_rate": 0.05,
        "unit": "step",
        "boundaries": [100_000, 200_000],
        "factor": 0.1,
        "warmup": 0,
    },
    "steps": 275_000,
    "steps_per_epoch": None,
    "mixed_precision": False,
    "jit_compile": False,
    "deterministic": False,
    "seed": 0,
    "init_from": None,
    "checkpoint_every": 1000,
}
