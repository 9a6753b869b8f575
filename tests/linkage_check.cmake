# tests/linkage_check.cmake: the TLS dependency is opt-in (include/planfence/etcd/tls.hpp).
#   cmake -DREADELF=readelf -DCTL=planfence-ctl -DCTL_TLS=YES|NO -DPLAIN=<a program without TLS> -P linkage_check.cmake
# PLAIN (which includes the etcd headers without PLANFENCE_ETCD_OPENSSL) must need no libssl or
# libcrypto; planfence-ctl must need libssl exactly when it was configured with
# PLANFENCE_WITH_OPENSSL=ON (CTL_TLS), which shows that the check sees a TLS library when one is
# linked.
function(needed_libraries program out)
  execute_process(COMMAND "${READELF}" -d "${program}" OUTPUT_VARIABLE dynamic RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "readelf -d ${program} failed (${status})")
  endif()
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*" needed "${dynamic}")
  set(${out} "${needed}" PARENT_SCOPE)
endfunction()

needed_libraries("${PLAIN}" plain_needed)
if(plain_needed MATCHES "libssl|libcrypto")
  message(FATAL_ERROR "${PLAIN} links a TLS library without PLANFENCE_ETCD_OPENSSL: ${plain_needed}")
endif()
needed_libraries("${CTL}" ctl_needed)
if(CTL_TLS AND NOT ctl_needed MATCHES "libssl")
  message(FATAL_ERROR "planfence-ctl was configured with PLANFENCE_WITH_OPENSSL=ON but links no libssl: ${ctl_needed}")
endif()
if(NOT CTL_TLS AND ctl_needed MATCHES "libssl|libcrypto")
  message(FATAL_ERROR "planfence-ctl links a TLS library in the default build: ${ctl_needed}")
endif()
message(STATUS "planfence-ctl: ${ctl_needed}")
message(STATUS "${PLAIN}: no TLS library")
