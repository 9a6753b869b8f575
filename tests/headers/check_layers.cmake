# tests/headers/check_layers.cmake: the include layers of include/planfence, checked.
#
#   cmake -DROOT=<dir holding planfence/> -P tests/headers/check_layers.cmake
#
# Every header belongs to a part: config.hpp and result.hpp are the foundation, the other files
# directly in planfence/ are the core, and each folder is a part of its own. Parts are ranked; a
# header may include headers of its own part and of parts ranked lower, never higher, and never a
# different part of the same rank (the three adapters, zonefile/, rfc2136/ and etcd/, do not
# include each other). So no folder includes a folder that includes it back. The ranks, lowest
# first (docs/design.md, "The source tree", says what each part is for):
#
#   0 foundation  config.hpp, result.hpp
#   1 detail/     machinery several parts share (epoch reclamation, SHA-256, sockets, URIs)
#   2 core        the other top-level headers (plans, registry, stores' concepts, enactor, ...)
#   3 dns/        planfence's records inside a DNS zone, shared by the two DNS adapters
#   4 zonefile/, rfc2136/, etcd/   the adapters: codec, transport and store of each
#   5 store/, sim/                 stores chosen at run time, and the simulator
#
# A new folder must be added to the table below, or the check fails and names it.
cmake_minimum_required(VERSION 3.20)

if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<include dir> -P check_layers.cmake")
endif()
get_filename_component(root "${ROOT}/planfence" ABSOLUTE)

set(rank_foundation 0)
set(rank_detail 1)
set(rank_core 2)
set(rank_dns 3)
set(rank_zonefile 4)
set(rank_rfc2136 4)
set(rank_etcd 4)
set(rank_store 5)
set(rank_sim 5)

function(part_of path out)
  file(RELATIVE_PATH relative "${root}" "${path}")
  if(relative MATCHES "^([^/]+)/")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
  elseif(relative STREQUAL "config.hpp" OR relative STREQUAL "result.hpp")
    set(${out} "foundation" PARENT_SCOPE)
  else()
    set(${out} "core" PARENT_SCOPE)
  endif()
endfunction()

file(GLOB_RECURSE headers "${root}/*.hpp")
list(SORT headers)
set(violations "")
set(edges 0)
foreach(header IN LISTS headers)
  part_of("${header}" from)
  if(NOT DEFINED rank_${from})
    file(RELATIVE_PATH name "${root}" "${header}")
    string(APPEND violations "\n  ${name}: folder '${from}' has no layer in check_layers.cmake")
    continue()
  endif()
  file(RELATIVE_PATH name "${root}" "${header}")
  get_filename_component(directory "${header}" DIRECTORY)
  file(STRINGS "${header}" includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*$" "\\1" target "${line}")
    get_filename_component(target "${directory}/${target}" ABSOLUTE)
    file(RELATIVE_PATH relative "${root}" "${target}")
    if(relative MATCHES "^\\.\\.")
      string(APPEND violations "\n  ${name} includes ${target}, outside include/planfence")
      continue()
    endif()
    if(NOT EXISTS "${target}")
      string(APPEND violations "\n  ${name} includes ${relative}, which does not exist")
      continue()
    endif()
    math(EXPR edges "${edges} + 1")
    part_of("${target}" to)
    if(from STREQUAL to)
      continue()
    endif()
    if(NOT DEFINED rank_${to})
      continue()  # reported once, as the including header of its own folder
    endif()
    if(rank_${to} GREATER rank_${from})
      string(APPEND violations "\n  ${name} (${from}, layer ${rank_${from}}) includes ${relative} "
                               "(${to}, layer ${rank_${to}}): a layer may include only lower layers")
    elseif(rank_${to} EQUAL rank_${from})
      string(APPEND violations "\n  ${name} (${from}) includes ${relative} (${to}): parts of one layer "
                               "do not include each other")
    endif()
  endforeach()
endforeach()

list(LENGTH headers count)
if(count EQUAL 0)
  message(FATAL_ERROR "no header found under ${root}")
endif()
if(violations)
  message(FATAL_ERROR "include layers broken:${violations}")
endif()
message(STATUS "include layers hold: ${count} headers, ${edges} includes inside planfence")
