"""Encoding analyzers (reference §2): the C++ core's, with the reference's constructors.

    MinMaxEncodingAnalyzer(shape)
    PercentileEncodingAnalyzer(shape, num_bins=2048, percentile=100)
    SqnrEncodingAnalyzer(shape, num_bins=2048, *, asymmetric_delta_candidates=17,
                         symmetric_delta_candidates=101, offset_candidates=21,
                         max_parallelism=64, gamma=3.0)
"""
from .. import _C

EncodingAnalyzer = _C.EncodingAnalyzer
MinMaxEncodingAnalyzer = _C.MinMaxEncodingAnalyzer
PercentileEncodingAnalyzer = _C.PercentileEncodingAnalyzer
SqnrEncodingAnalyzer = _C.SqnrEncodingAnalyzer
StatisticsNotFoundError = _C.StatisticsNotFoundError

__all__ = ["EncodingAnalyzer", "MinMaxEncodingAnalyzer", "PercentileEncodingAnalyzer",
           "SqnrEncodingAnalyzer", "StatisticsNotFoundError"]
