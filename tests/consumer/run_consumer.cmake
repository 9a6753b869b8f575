# One step of the consumer tests (see tests/consumer/CMakeLists.txt):
#   cmake -DSTEP=install|find_package|pkg_config|add_subdirectory -D... -P run_consumer.cmake
# Every command must succeed; the first that does not stops the script with its output, which
# makes CTest report the test as failed.
cmake_minimum_required(VERSION 3.21)

foreach(variable IN ITEMS STEP COMPILER GENERATOR PREFIX WORK_DIR CONSUMER_SOURCE_DIR
                          PLANFENCE_SOURCE_DIR PLANFENCE_BINARY_DIR PLANFENCE_VERSION)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "run_consumer.cmake: -D${variable}=... is required")
  endif()
endforeach()

# Runs a command and stops with its output unless it exits with 0.
function(run_step description)
  list(JOIN ARGN " " command_text)
  message(STATUS "${description}: ${command_text}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE exit_code
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT exit_code EQUAL 0)
    message(FATAL_ERROR "${description} failed (exit ${exit_code}):\n$ ${command_text}\n${output}")
  endif()
endfunction()

# Fails unless `path` lies inside `directory` (both resolved, so .. and symlinks do not fool it).
function(require_inside path directory what)
  file(REAL_PATH "${path}" real_path)
  file(REAL_PATH "${directory}" real_directory)
  string(FIND "${real_path}/" "${real_directory}/" position)
  if(NOT position EQUAL 0)
    message(FATAL_ERROR "${what} is ${real_path}, which is not inside ${real_directory}: the "
                        "consumer did not use the copy under test")
  endif()
endfunction()

set(config_arguments "")
if(CONFIG)
  set(config_arguments --config "${CONFIG}")
endif()

# Configures, builds and runs one consumer project, with this build's compiler and generator.
function(build_and_run_consumer name)
  set(source_dir "${CONSUMER_SOURCE_DIR}/${name}")
  set(binary_dir "${WORK_DIR}/${name}")
  file(REMOVE_RECURSE "${binary_dir}")
  set(configure_command "${CMAKE_COMMAND}" -S "${source_dir}" -B "${binary_dir}"
    -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${COMPILER}"
    # Never a planfence registered by some other build on this machine.
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  if(MAKE_PROGRAM)
    list(APPEND configure_command "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
  if(CONFIG)
    list(APPEND configure_command "-DCMAKE_BUILD_TYPE=${CONFIG}")
  endif()
  list(APPEND configure_command ${ARGN})
  run_step("configure the ${name} consumer" ${configure_command})
  run_step("build the ${name} consumer"
    "${CMAKE_COMMAND}" --build "${binary_dir}" ${config_arguments})
  set(consumer_binary_dir "${binary_dir}" PARENT_SCOPE)
  run_step("run the ${name} consumer" "${binary_dir}/bin/planfence_consumer")
endfunction()

if(STEP STREQUAL "install")
  foreach(variable IN ITEMS INSTALL_INCLUDEDIR INSTALL_CMAKEDIR INSTALL_PKGCONFIGDIR)
    if(NOT DEFINED ${variable})
      message(FATAL_ERROR "run_consumer.cmake: -D${variable}=... is required for STEP=install")
    endif()
  endforeach()
  file(REMOVE_RECURSE "${PREFIX}")
  run_step("install planfence"
    "${CMAKE_COMMAND}" --install "${PLANFENCE_BINARY_DIR}" ${config_arguments}
    --prefix "${PREFIX}" --component planfence_development)
  foreach(file IN ITEMS
      "${INSTALL_INCLUDEDIR}/planfence/planfence.hpp"
      "${INSTALL_INCLUDEDIR}/planfence/ids.hpp"
      "${INSTALL_CMAKEDIR}/planfence-config.cmake"
      "${INSTALL_CMAKEDIR}/planfence-config-version.cmake"
      "${INSTALL_CMAKEDIR}/planfence-targets.cmake"
      "${INSTALL_PKGCONFIGDIR}/planfence.pc")
    if(NOT EXISTS "${PREFIX}/${file}")
      message(FATAL_ERROR "the install is missing ${file} (prefix ${PREFIX})")
    endif()
  endforeach()
  # Every public header is installed, not only the ones listed above.
  file(GLOB_RECURSE source_headers RELATIVE "${PLANFENCE_SOURCE_DIR}/include"
    "${PLANFENCE_SOURCE_DIR}/include/planfence/*.hpp")
  foreach(header IN LISTS source_headers)
    if(NOT EXISTS "${PREFIX}/${INSTALL_INCLUDEDIR}/${header}")
      message(FATAL_ERROR "the install is missing the header ${header}")
    endif()
  endforeach()
  message(STATUS "installed into ${PREFIX}")

elseif(STEP STREQUAL "find_package")
  if(NOT EXISTS "${PREFIX}")
    message(FATAL_ERROR "${PREFIX} does not exist: run the test consumer.install first")
  endif()
  build_and_run_consumer(find_package "-DCMAKE_PREFIX_PATH=${PREFIX}")
  # The consumer must have found the copy just installed, not one elsewhere on the machine.
  file(STRINGS "${consumer_binary_dir}/CMakeCache.txt" planfence_dir_line
    REGEX "^planfence_DIR:PATH=")
  string(REGEX REPLACE "^planfence_DIR:PATH=" "" planfence_dir "${planfence_dir_line}")
  require_inside("${planfence_dir}" "${PREFIX}" "planfence_DIR")
  message(STATUS "find_package consumer built and ran against ${planfence_dir}")

elseif(STEP STREQUAL "pkg_config")
  foreach(variable IN ITEMS PKG_CONFIG INSTALL_PKGCONFIGDIR)
    if(NOT DEFINED ${variable})
      message(FATAL_ERROR "run_consumer.cmake: -D${variable}=... is required for STEP=pkg_config")
    endif()
  endforeach()
  set(ENV{PKG_CONFIG_PATH} "${PREFIX}/${INSTALL_PKGCONFIGDIR}")
  execute_process(COMMAND "${PKG_CONFIG}" --modversion planfence
    RESULT_VARIABLE exit_code OUTPUT_VARIABLE version ERROR_VARIABLE error
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT exit_code EQUAL 0 OR NOT version STREQUAL PLANFENCE_VERSION)
    message(FATAL_ERROR "pkg-config --modversion planfence gave `${version}` (exit ${exit_code}), "
                        "expected ${PLANFENCE_VERSION}\n${error}")
  endif()
  foreach(kind IN ITEMS cflags libs)
    execute_process(COMMAND "${PKG_CONFIG}" --${kind} planfence
      RESULT_VARIABLE exit_code OUTPUT_VARIABLE ${kind} ERROR_VARIABLE error
      OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT exit_code EQUAL 0)
      message(FATAL_ERROR "pkg-config --${kind} planfence failed:\n${error}")
    endif()
    separate_arguments(${kind} UNIX_COMMAND "${${kind}}")
  endforeach()
  # The include directory it names must be the installed one.
  set(include_dir "")
  foreach(flag IN LISTS cflags)
    if(flag MATCHES "^-I(.+)$")
      set(include_dir "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  if(NOT include_dir)
    message(FATAL_ERROR "pkg-config --cflags planfence names no include directory: ${cflags}")
  endif()
  require_inside("${include_dir}" "${PREFIX}" "the pkg-config include directory")

  set(binary_dir "${WORK_DIR}/pkg_config")
  file(REMOVE_RECURSE "${binary_dir}")
  file(MAKE_DIRECTORY "${binary_dir}")
  run_step("compile with the pkg-config flags"
    "${COMPILER}" ${cflags} "${CONSUMER_SOURCE_DIR}/find_package/main.cpp"
    -o "${binary_dir}/planfence_consumer" ${libs})
  run_step("run the pkg-config consumer" "${binary_dir}/planfence_consumer")
  message(STATUS "pkg-config consumer built and ran with: ${cflags} ${libs}")

elseif(STEP STREQUAL "add_subdirectory")
  build_and_run_consumer(add_subdirectory "-DPLANFENCE_SOURCE_DIR=${PLANFENCE_SOURCE_DIR}")
  message(STATUS "add_subdirectory consumer built and ran")

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown STEP `${STEP}`")
endif()
