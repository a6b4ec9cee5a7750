"""Chip folders: Export Training Chips writes them, Train U-Net reads them (ours and Esri's Classified Tiles)."""

from .dataset import ChipDataset, load_chip_dataset
from .export import BACKGROUND_WARNING_SHARE, ExportConfig, ExportResult, export_chips
from .folder import CHIPS_FORMAT, CHIPS_FORMAT_VERSION
from .split import class_training_shares, spatial_split, validation_mask

__all__ = ["BACKGROUND_WARNING_SHARE", "CHIPS_FORMAT", "CHIPS_FORMAT_VERSION", "ChipDataset", "ExportConfig", "ExportResult",
           "class_training_shares", "export_chips", "load_chip_dataset", "spatial_split", "validation_mask"]
