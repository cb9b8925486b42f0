"""Minimum Margin Loss paper, scheme "Softmax Loss + Centre Loss".

Paper: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face Recognition",
Pattern Recognition (2020);
§3.1 (experiment details), results in Tables 2, 3, 4 and 5 (row "Centre Loss").

Setting (§3.1, "Training data", "Data preprocessing", "Network settings", "Test settings"):
VGGFace2 with test-set overlaps removed (8K identities, 3.05M images), MTCNN-aligned 160×160 RGB
crops, random horizontal flip; Inception-ResNet-v1, 512-d embedding, keep probability 0.4 of the
fully connected layer; batch 90; weight decay 5e-4; learning rate 0.05 divided by 10 every 100K
iterations; 275K iterations (about 30 h on one GTX 1080 Ti).

Loss: eq. 3, softmax + α·centre loss with α = 5e-5 (§3.1 "Test settings": α of eq. 12).
This run's weights are the starting point of the MML scheme (mml_centre_mml).

Not stated in the paper (our choices, override with --set):
- optimizer: Adam(β1=0.9, β2=0.999, ε=0.1). The paper's TensorFlow setting is, value for value,
  facenet's published VGGFace2 classifier recipe (Inception-ResNet-v1, batch 90, keep 0.4,
  weight decay 5e-4, 512-d, 0.05 ÷10 at 100K/200K, 275K steps, ~30 h), which trains with this
  optimizer.
- centre update rate γ of eqs. 14-15 (ClassCentres alpha) = 0.5, the value of the Centre Loss
  paper (Wen et al., ECCV 2016) whose update rule eqs. 14-15 restate.

Data: "data/vggface2_tfrecords" is a placeholder. Build it from the VGGFace2 images with
    tfface align VGGFACE2_TRAIN data/vggface2_160 --mode facenet --size 160
    tfface build data/vggface2_160 data/vggface2_tfrecords
Evaluate as the paper does: features of the image and its mirror concatenated (flip "concat"),
Euclidean distance (tfface.eval: flip="concat", metric="euclidean").
Run:
    tfface train mml_centre --workdir runs/mml_centre
"""

RECIPE = {
    "name": "mml_centre",
    "description": "MML paper: softmax + centre loss (α=5e-5), Inception-ResNet-v1 on VGGFace2",
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
    "aux_losses": {"centre": {"class": "CentreLoss", "weight": 5e-5}},
    "centres": {"alpha": 0.5},
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
