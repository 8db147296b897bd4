# Install-time step (install(SCRIPT), gateway/CMakeLists.txt): the systemd unit and the config.
# Where they go depends on the prefix, which `cmake --install --prefix` and cpack choose at
# install time, not at configure time:
#   prefix /usr (the .deb)  /etc/sluice/sluice.yaml and <systemd's unit dir>/sluice.service
#                           (GNUInstallDirs' rule: sysconfdir is /etc for the /usr prefix)
#   any other prefix        <prefix>/etc/sluice/sluice.yaml, <prefix>/lib/systemd/system/...
# The unit's paths (/usr/bin/sluice, /etc/sluice/) are rewritten to the installed ones.
# In: SLUICE_SOURCE_DIR, SLUICE_STAGING (a build directory), SLUICE_BINDIR, SLUICE_UNIT_DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc_dir "/etc")
  set(unit_dir "${SLUICE_UNIT_DIR}")
else()
  set(etc_dir "${CMAKE_INSTALL_PREFIX}/etc")
  set(unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()

file(READ "${SLUICE_SOURCE_DIR}/deploy/systemd/sluice.service" unit)
string(REPLACE "/usr/bin/sluice" "${CMAKE_INSTALL_PREFIX}/${SLUICE_BINDIR}/sluice" unit "${unit}")
string(REPLACE "/etc/sluice/" "${etc_dir}/sluice/" unit "${unit}")
file(WRITE "${SLUICE_STAGING}/sluice.service" "${unit}")
file(INSTALL "${SLUICE_STAGING}/sluice.service" DESTINATION "${unit_dir}")

# An edited config is kept, as dpkg keeps a conffile: a second `cmake --install` does not
# overwrite the operator's file.
set(config "$ENV{DESTDIR}${etc_dir}/sluice/sluice.yaml")
if(EXISTS "${config}")
  file(READ "${config}" installed)
  file(READ "${SLUICE_SOURCE_DIR}/deploy/systemd/sluice.yaml" shipped)
  if(NOT installed STREQUAL shipped)
    message(STATUS "Keeping: ${config} (differs from the shipped one, not overwritten)")
    return()
  endif()
endif()
file(INSTALL "${SLUICE_SOURCE_DIR}/deploy/systemd/sluice.yaml" DESTINATION "${etc_dir}/sluice")
