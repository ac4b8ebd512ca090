"""Click-prediction models (``CTRModel``): logistic regression, FM, MLP, Wide&Deep, DeepFM,
DCN-v2, xDeepFM, DIN, gradient-boosted trees and ensembles."""
