"""CurricularFace paper: CurricularFace with ResNet50 on CASIA-WebFace.

Paper: Y. Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020;
§4.1; the CASIA-WebFace setting of the ablations in Tables 2 and 3 (LFW, CFP-FP).
The paper does not name the backbone of those ablations; ResNet50 is the smaller of its two.

Head: CurricularFace (eqs. 8-10): target cos(θ_y + m); a hard negative (cos θ_j > cos(θ_y + m))
becomes cos θ_j·(t + cos θ_j); t ← 0.01·r + 0.99·t from t = 0 (eq. 9, α = 0.99).

Evaluate (the paper's table columns; DATA_<NAME> is each benchmark as distributed, docs/eval.md):
- Tables 2-4 (LFW, CFP-FP, CPLFW, AgeDB, CALFW):
    tfface eval --model runs/curricularface_ir50_casia --protocol lfw --data DATA_LFW --protocol cfp_fp --data DATA_CFP_FP --protocol cplfw --data DATA_CPLFW --protocol agedb_30 --data DATA_AGEDB_30 --protocol calfw --data DATA_CALFW --flip sum --out runs/curricularface_ir50_casia/eval
- Table 5 (IJB-B, IJB-C 1:1):
    tfface eval --model runs/curricularface_ir50_casia --protocol ijbb --data DATA_IJBB --protocol ijbc --data DATA_IJBC --flip sum --out runs/curricularface_ir50_casia/eval
- Table 6 (MegaFace):
    tfface eval --model runs/curricularface_ir50_casia --protocol megaface --data DATA_MEGAFACE --flip sum --out runs/curricularface_ir50_casia/eval

Base: CURRICULARFACE in tfface/recipes/_bases.py (setting, choices, data).
Run: tfface train curricularface_ir50_casia --workdir runs/curricularface_ir50_casia
"""
from tfface.recipes._bases import CURRICULARFACE

RECIPE = CURRICULARFACE.derive(
    name="curricularface_ir50_casia",
    description="CurricularFace (s=64, m=0.5), iresnet50 on CASIA-WebFace, 50 epochs",
    cite="Huang et al., CurricularFace (CVPR 2020), §4.1, Tables 2-3",
)
