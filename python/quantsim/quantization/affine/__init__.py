"""Affine quantization: quantizers, encodings and functional ops (reference §1)."""
from ... import _C
from .functional import dequantize, quantize, quantize_dequantize
from .quantizer import (AffineQuantizerBase, GroupedBlockQuantizeDequantize, Quantize,
                        QuantizeDequantize)


_native_encoding_init = _C.AffineEncoding.__init__


def _encoding_init(self, scale, offset, *args, **kwargs):
    """An affine encoding, constructed as the reference's::

        AffineEncoding(scale, offset, bitwidth, signed=False, symmetry=False, block_size=None)
        AffineEncoding(scale, offset, qmin, qmax, symmetry=False, block_size=None)
    """
    args = list(args)
    if "qmin" in kwargs or (len(args) >= 2 and isinstance(args[1], int)
                            and not isinstance(args[1], bool)):
        qmin = kwargs.pop("qmin") if "qmin" in kwargs else args.pop(0)
        qmax = kwargs.pop("qmax") if "qmax" in kwargs else args.pop(0)
    else:
        bitwidth = kwargs.pop("bitwidth") if "bitwidth" in kwargs else args.pop(0)
        signed = kwargs.pop("signed") if "signed" in kwargs else (
            args.pop(0) if args else False)
        qmin, qmax = _C.grid_from_bitwidth(bitwidth, bool(signed))
    symmetry = kwargs.pop("symmetry") if "symmetry" in kwargs else (
        args.pop(0) if args else False)
    block_size = kwargs.pop("block_size") if "block_size" in kwargs else (
        args.pop(0) if args else None)
    if args or kwargs:
        raise TypeError(f"AffineEncoding() got unexpected arguments {args or list(kwargs)}")
    _native_encoding_init(self, scale, offset, qmin, qmax, bool(symmetry), block_size)


# The C++ class itself takes the reference's forms, so that the encodings quantizers return are
# instances of the class users construct.
_C.AffineEncoding.__init__ = _encoding_init
AffineEncoding = _C.AffineEncoding


__all__ = ["AffineQuantizerBase", "Quantize", "QuantizeDequantize",
           "GroupedBlockQuantizeDequantize", "AffineEncoding", "quantize", "dequantize",
           "quantize_dequantize"]
