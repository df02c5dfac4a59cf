# Run by CTest (install.consumer): installs mproc (static, then shared) into
# prefixes under WORK_DIR and builds and runs the consumer against each, then
# builds the consumer with FetchContent from SOURCE_DIR.
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DCXX_COMPILER=... -P check.cmake

find_program(NINJA ninja)
if(NINJA)
  set(generator -G Ninja)
endif()
set(consumer_source ${SOURCE_DIR}/tests/install_consumer)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(check_consumer build_dir)
  run(${build_dir}/consumer)
  if(NOT last_output MATCHES "consumer sum 42")
    message(FATAL_ERROR "unexpected consumer output: ${last_output}")
  endif()
  message(STATUS "${build_dir}: ${last_output}")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
foreach(shared OFF ON)
  set(dir ${WORK_DIR}/shared-${shared})
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${dir}/mproc ${generator}
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=${shared}
      -DMPROC_BUILD_TESTS=OFF -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=OFF)
  run(${CMAKE_COMMAND} --build ${dir}/mproc)
  run(${CMAKE_COMMAND} --install ${dir}/mproc --prefix ${dir}/prefix)
  run(${CMAKE_COMMAND} -S ${consumer_source} -B ${dir}/consumer ${generator}
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${dir}/prefix)
  run(${CMAKE_COMMAND} --build ${dir}/consumer)
  check_consumer(${dir}/consumer)
endforeach()

set(dir ${WORK_DIR}/fetchcontent)
run(${CMAKE_COMMAND} -S ${consumer_source} -B ${dir} ${generator}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DMPROC_FETCH_SOURCE=${SOURCE_DIR})
run(${CMAKE_COMMAND} --build ${dir})
check_consumer(${dir})
file(REMOVE_RECURSE ${WORK_DIR})
