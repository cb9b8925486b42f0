"""One base recipe per paper family; the recipe modules derive from these.

Each base holds the setting of its paper's experimental section and the choices the paper leaves
open (listed under "Not stated in the paper"). A derived recipe states its ``name``,
``description``, ``cite`` and what differs; a base is never trained by itself.

Data paths are placeholders: build them with ``tfface align`` and ``tfface build`` as each block
says, or pass ``--set data.train=PATH``.
"""
from tfface.recipe import Recipe


def aux(name, weight, **args):
    """A weighted auxiliary loss entry, ``{"name": name, "weight": weight, **args}``."""
    return {"name": name, "weight": weight, **args}


# ---------------------------------------------------------------------------------------------
# Minimum Margin Loss: X. Wei, H. Wang, B. Scotney, H. Wan, "Minimum Margin Loss for Deep Face
# Recognition", Pattern Recognition (2020), §3.1, Tables 2-5.
#
# Setting (§3.1 "Training data", "Data preprocessing", "Network settings", "Test settings"):
# VGGFace2 minus test overlaps (8K identities, 3.05M images), MTCNN-aligned 160×160 RGB crops,
# random horizontal flip; Inception-ResNet-v1, 512-d, keep probability 0.4 before the FC layer;
# batch 90; weight decay 5e-4; learning rate 0.05 ÷10 every 100K iterations; 275K iterations.
# L_S (eq. 1) is softmax over a fully connected layer with bias, a batch mean.
#
# Not stated in the paper (our choices):
# - optimizer Adam(β1=0.9, β2=0.999, ε=0.1): the paper's setting is, value for value, facenet's
#   published VGGFace2 classifier recipe (batch 90, keep 0.4, wd 5e-4, 512-d, 0.05 ÷10 at
#   100K/200K, 275K steps), which trains with this optimizer.
# - ClassCentres alpha (γ of eqs. 14-15) = 0.5, the Centre Loss paper's value (Wen et al., ECCV
#   2016), whose update rule eqs. 14-15 restate.
#
# Centre loss (eq. 2) is a *sum* over the batch, L_C = ½ Σ_i ‖f_i − c_{y_i}‖², weighted by
# α = 5e-5 (eq. 12), so the recipes use CentreLoss(reduction="sum"). facenet's own centre loss is
# a mean over N·D; we follow the printed equation.
# Evaluation as the paper's: features of the image and its mirror concatenated (flip "concat"),
# Euclidean distance; on the L2-normalised features tfface compares, Euclidean distance orders
# pairs exactly as cosine similarity does, so the protocols' default cosine gives the same figures.
# Data: tfface align VGGFACE2_TRAIN data/vggface2_160 --mode facenet --size 160
#       tfface build data/vggface2_160 data/vggface2_tfrecords
MML = Recipe.from_dict({
    "name": "mml",
    "data": {"train": "data/vggface2_tfrecords", "image_size": [160, 160], "batch_size": 90},
    "backbone": {"name": "inception_resnet_v1", "embedding_size": 512, "dropout_keep": 0.4},
    "head": {"name": "softmax", "use_bias": True},
    "optimizer": {"name": "adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 0.1},
    "weight_decay": 5e-4,
    "schedule": {"learning_rate": 0.05, "unit": "step", "boundaries": [100_000, 200_000], "factor": 0.1},
    "steps": 275_000,
})
MML_CENTRE = aux("centre", 5e-5, reduction="sum")
MML_CENTRES = {"name": "class_centres", "alpha": 0.5}

# ---------------------------------------------------------------------------------------------
# Hard-Mining loss: Y. Srivastava, V. Murali, S. R. Dubey, "Hard-Mining Loss based Convolutional
# Neural Network for Face Recognition", §III-D, Table I (CASIA-WebFace; Table II: MS-Celeb-1M).
#
# Setting (§III A, B, D): ResNet18 (iresnet18) on CASIA-WebFace (494,414 images, 10,575
# identities), MTCNN-aligned, (x − 127.5)/128; batch 64; SGD with momentum; learning rate 0.01
# ×0.1 at epochs 8, 12, 16; 20 epochs; Hard-Mining α = 1.5, β = 1.1, A = 35, B = 0.75.
#
# Not stated in the paper (our choices):
# - 112×112 crops with ArcFace's five-point alignment ("following the recent trend [8], [7]");
#   momentum 0.9 and weight decay 5e-4, the values of ArcFace's and SphereFace's training code.
# - the Hard-Mining loss is applied per sample and then averaged over the batch: the paper's L
#   inside L_HM is a batch mean, but Algorithm 1 weighs each sample's own loss.
# - evaluation: the paper does not say whether a flipped copy is used; tfface.eval's default
#   (no flip) reproduces a plain single-image protocol.
# Data: tfface align CASIA_WEBFACE data/casia_webface_112 --size 112
#       tfface build data/casia_webface_112 data/casia_webface_tfrecords
# Table II: --set data.train=data/ms1m_tfrecords.
HARD_MINING = Recipe.from_dict({
    "name": "hardmining",
    "data": {"train": "data/casia_webface_tfrecords", "image_size": [112, 112], "batch_size": 64},
    "backbone": {"name": "iresnet18", "embedding_size": 512},
    "head": {"name": "softmax", "use_bias": True},
    "schedule": {"learning_rate": 0.01, "unit": "epoch", "boundaries": [8, 12, 16], "factor": 0.1},
    "epochs": 20,
})
HARD_MINING_LOSS = {"name": "hard_mining", "alpha": 1.5, "beta": 1.1, "A": 35.0, "B": 0.75}

# ---------------------------------------------------------------------------------------------
# MV-Softmax: X. Wang, S. Zhang, S. Wang, T. Fu, H. Shi, T. Mei, "Mis-classified Vector Guided
# Softmax Loss for Face Recognition", AAAI 2020, arXiv:1912.00833, § "Experimental Settings",
# Tables 3-5 (t chosen in Table 2).
#
# Setting: MS-Celeb-1M-v1c minus test overlaps (72,690 identities, 3.28M images), five-landmark
# crops resized to 144×144, (x − 127.5)/128, random flip; AttentionNet-IRSE (stages [1, 1, 1]),
# 512-d; SGD momentum 0.9, weight decay 5e-4, total batch 128; learning rate 0.1 ÷10 at epochs 4,
# 8, 10; 12 epochs; s = 32 "for all the methods"; m_AM = 0.35, m_Arc = 0.5, m_A-Softmax = 3;
# F-Softmax γ = 2; HM-Softmax keeps the 90% highest-loss samples.
#
# Notes:
# - the official code sets easy_margin=True for its Arc variants; that is not the paper's
#   formula (cos(θ+m) for every θ), and tfface follows the paper.
# - evaluation as the paper's "Test": the original image only (no flip), cosine similarity.
# Data: tfface align MS1M_V1C_R data/ms1m_v1c_r_144 --size 144
#       tfface build data/ms1m_v1c_r_144 data/ms1m_v1c_r_tfrecords
MV_SOFTMAX = Recipe.from_dict({
    "name": "mv",
    "data": {"train": "data/ms1m_v1c_r_tfrecords", "image_size": [144, 144], "batch_size": 128},
    "backbone": {"name": "attentionnet_irse", "embedding_size": 512},
    "head": {"name": "normface", "scale": 32.0},
    "schedule": {"learning_rate": 0.1, "unit": "epoch", "boundaries": [4, 8, 10], "factor": 0.1},
    "epochs": 12,
})

# ---------------------------------------------------------------------------------------------
# CurricularFace: Y. Huang, Y. Wang, Y. Tai, X. Liu, P. Shen, S. Li, J. Li, F. Huang,
# "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face Recognition", CVPR 2020,
# arXiv:2004.00288, §4.1, Tables 2-6.
#
# Setting (§4.1 "Training Setting"): 112×112 five-landmark crops as ArcFace; "ResNet50 and
# ResNet100 as in [ArcFace]" (iresnet50 / iresnet100, 512-d); batch 512; SGD momentum 0.9,
# weight decay 5e-4; CASIA-WebFace: 0.1 ÷10 at epochs 28, 38, 46, end at 50; MS1MV2: ÷10 at 10,
# 18, 22, end at 24; s = 64, m = 0.5. t: EMA of the batch mean of cos θ_y, momentum 0.01.
#
# Choices:
# - dropout 0.4 before the FC layer: ArcFace's output block "E" and the official CurricularFace
#   backbone both apply it (the iresnet recipes set it; MobileFaceNet has no such dropout).
# - weight decay on every weight but batch norm (decay_scope "all_but_batchnorm"), as the
#   official code does (it decays PReLU slopes and biases; tfface's default decays kernels only).
# - IResNet initialisers are Keras' Glorot-uniform; insightface initialises convolutions with
#   normal(0, 0.1). Neither paper states one.
# - evaluation: ArcFace's protocol, the sum of the embeddings of the image and its mirror
#   (flip "sum"), cosine similarity.
# Data: tfface align CASIA_WEBFACE data/casia_webface_112 --size 112
#       tfface build data/casia_webface_112 data/casia_webface_tfrecords
# MS1MV2: insightface's faces_emore release as distributed (MXNet RecordIO: train.rec, train.idx,
# property; 5.8M images of 85,742 identities), read directly: data/faces_emore/train.rec
# (or --set data.train=/data/faces_emore/train.rec; `tfface build` converts it to TFRecords).
CURRICULARFACE = Recipe.from_dict({
    "name": "curricularface",
    "data": {"train": "data/casia_webface_tfrecords", "image_size": [112, 112], "batch_size": 512},
    "backbone": {"name": "iresnet50", "embedding_size": 512, "dropout": 0.4},
    "head": {"name": "curricularface", "scale": 64.0, "margin": 0.5, "momentum": 0.01},
    "decay_scope": "all_but_batchnorm",
    "schedule": {"learning_rate": 0.1, "unit": "epoch", "boundaries": [28, 38, 46], "factor": 0.1},
    "epochs": 50,
})
CURRICULARFACE_MS1MV2 = {
    "data.train": "data/faces_emore/train.rec", "schedule.boundaries": [10, 18, 22], "epochs": 24,
}

# ---------------------------------------------------------------------------------------------
# ReCurricularFace, §4.2 (ResNet18 on CASIA-WebFace), Table 1.
#
# Setting: ResNet18 (iresnet18, 512-d), batch 512, 34 epochs, learning rate 0.1 ×0.1 at epochs
# 20, 28, 32; I(t, cos θ_j) = 1.1·cos θ_j + 0.4·t; s = 64, m = 0.5 (ArcFace's, which the paper
# builds on). SGD momentum 0.9 and weight decay 5e-4 (CurricularFace's, whose code it extends;
# decay on all but batch norm, as there). Evaluation: the paper does not say; as CurricularFace
# (ArcFace's protocol, flip "sum", cosine).
# Data: as CurricularFace (CASIA-WebFace 112×112).
RECURRICULARFACE = Recipe.from_dict({
    "name": "recurricularface",
    "data": {"train": "data/casia_webface_tfrecords", "image_size": [112, 112], "batch_size": 512},
    "backbone": {"name": "iresnet18", "embedding_size": 512},
    "head": {"name": "recurricularface", "scale": 64.0, "margin": 0.5, "a": 1.1, "b": 0.4,
             "momentum": 0.01},
    "decay_scope": "all_but_batchnorm",
    "schedule": {"learning_rate": 0.1, "unit": "epoch", "boundaries": [20, 28, 32], "factor": 0.1},
    "epochs": 34,
})
