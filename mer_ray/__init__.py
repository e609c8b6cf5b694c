"""mer_ray: multimodal (face + voice) emotion recognition at archive scale, on Ray."""
__version__ = "0.1.0"
