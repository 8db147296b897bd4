# Writes sluice(1) from the built binary (cmake -P, at build time: gateway/CMakeLists.txt):
#   help2man formats `sluice --help` (NAME, SYNOPSIS, DESCRIPTION, OPTIONS) and `--version`;
#   each subcommand's `sluice <cmd> --help` goes into a COMMANDS section, through an include file.
# help2man reads a single --help: CLI11 prints the subcommands' options only under
# `sluice <cmd> --help`, so those are added verbatim (no-fill, roff-escaped) rather than parsed.
# In: SLUICE (the binary), HELP2MAN, VERSION, OUT (sluice.1; sluice.1.gz is written beside it).
foreach(var SLUICE HELP2MAN OUT VERSION)
  if(NOT ${var})
    message(FATAL_ERROR "man_page.cmake: ${var} is not set")
  endif()
endforeach()

# roff: a backslash is \e, and a line must not start with a control character (. or ').
function(roff_verbatim text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

set(include "[COMMANDS]\n")
foreach(cmd run validate demo version)
  execute_process(COMMAND ${SLUICE} ${cmd} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SLUICE} ${cmd} --help failed (${rc}): ${err}")
  endif()
  # CLI11 prints argv[0] (the build's path) in Usage:, and repeats the top-level footer.
  string(REPLACE "${SLUICE}" "sluice" help "${help}")
  string(REGEX REPLACE "\n`sluice run --help` lists the signals[^\n]*\n" "" help "${help}")
  roff_verbatim("${help}" help)
  string(APPEND include ".SS \"sluice ${cmd}\"\n.nf\n${help}.fi\n")
endforeach()
string(APPEND include "
[FILES]
.TP
.I /etc/sluice/sluice.yaml
The config file the systemd unit (sluice.service) runs.
.TP
.I /var/log/sluice/
The access log, when the config writes it there.

[SEE ALSO]
.BR systemctl (1),
.BR systemd.service (5),
.BR sd_notify (3).
The configuration reference, operations guide and architecture notes are in
.IR /usr/share/doc/sluice/ .
")
file(WRITE "${OUT}.include" "${include}")

execute_process(
  COMMAND ${HELP2MAN} --no-info --section=1 "--version-string=${VERSION}"
          "--name=HTTP gateway that keeps services standing" "--include=${OUT}.include"
          "--output=${OUT}" ${SLUICE}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed (${rc}): ${err}")
endif()
# Debian ships man pages gzipped; -n leaves out the time stamp, so the bytes are reproducible.
execute_process(COMMAND gzip -9nc "${OUT}" OUTPUT_FILE "${OUT}.gz" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${OUT} failed (${rc})")
endif()
