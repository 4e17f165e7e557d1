# `cmake --install` puts a working package in the prefix's Python path: installs the build into a
# temporary prefix, then imports quantsim from there (and not from the build tree) in a fresh
# /usr/bin/python3 and runs one quantizer.
file(REMOVE_RECURSE ${PREFIX})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX}
  RESULT_VARIABLE installed OUTPUT_QUIET)
if(NOT installed EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} --prefix ${PREFIX} failed: ${installed}")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${PREFIX}/${PACKAGE_DIR} ${PYTHON} -c
    "import quantsim, torch; from quantsim.quantization.affine import QuantizeDequantize; assert quantsim.__file__.startswith('${PREFIX}/'), quantsim.__file__; q = QuantizeDequantize((), 8, False); q.set_range(-1, 1); print(quantsim.__file__, q(torch.tensor([0.5])).item())"
  WORKING_DIRECTORY ${PREFIX}
  RESULT_VARIABLE imported)
if(NOT imported EQUAL 0)
  message(FATAL_ERROR "the installed package does not import from ${PREFIX}/${PACKAGE_DIR}")
endif()
