# `cpack -G DEB` in a build directory: one package, sluice, holding what `cmake --install`
# installs (the gateway, its man page, unit and config, the docs, and the resilience library
# with its headers and CMake package: small enough not to need a -dev package of its own).
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR "sluice")
if(NOT CPACK_PACKAGE_CONTACT)  # -DCPACK_PACKAGE_CONTACT=... at configure time
  set(CPACK_PACKAGE_CONTACT "sluice maintainers <sluice@example.org>")
endif()
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "HTTP gateway that keeps services standing")
set(CPACK_PACKAGE_DESCRIPTION
    "An HTTP/1.1 reverse proxy configured in YAML: rate and concurrency limits, circuit \
breakers, retries under a budget, deadlines, health checks, outlier ejection, grey releases, \
graceful drain and reload, Prometheus metrics. Runs under systemd (Type=notify, \
sluice.service). Also ships the resilience library it is built on (static, C++20, \
find_package(sluice CONFIG)).")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
# /etc/sluice and the unit lie outside the /usr prefix (cmake/install_system_files.cmake): the
# install runs with DESTDIR and the real prefix, not into a staging prefix.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# The binary is built with debug info (-g); the package carries it stripped.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the libraries the binary links (dpkg-shlibdeps, from dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg keeps an edited /etc/sluice/sluice.yaml on upgrade. No maintainer scripts: enabling and
# starting the unit is left to the administrator (systemctl enable --now sluice).
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)

include(CPack)
