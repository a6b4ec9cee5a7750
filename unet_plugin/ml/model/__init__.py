"""The network and its file: ResNet encoders, the U-Net, the model file format, the ONNX export."""

from .encoders import EncoderWeightsError, imagenet_state_dict, load_weights_file
from .modelfile import ModelFileError, load_model, read_model_file, save_model
from .unet import UNet

__all__ = ["EncoderWeightsError", "ModelFileError", "UNet", "imagenet_state_dict", "load_model", "load_weights_file",
           "read_model_file", "save_model"]
