# Builds web/dist/management.html (run with `cmake -P` by the custom command in CMakeLists.txt).
# Several build directories may share one web/ folder, so the whole step runs under a file
# lock and is skipped when dist/management.html is already newer than every web source.
# `npm ci` runs only when node_modules is missing or package-lock.json is newer than it.
# Inputs: -DNPM=<path to npm> -DWEB_DIR=<web folder>.
cmake_minimum_required(VERSION 3.20)

file(LOCK "${WEB_DIR}/.panel-build.lock" GUARD PROCESS TIMEOUT 900 RESULT_VARIABLE lock_rc)
if(NOT lock_rc STREQUAL "0")
  message(FATAL_ERROR "panel build: could not lock ${WEB_DIR}/.panel-build.lock: ${lock_rc}")
endif()

set(out "${WEB_DIR}/dist/management.html")
file(GLOB_RECURSE sources "${WEB_DIR}/src/*")
list(APPEND sources "${WEB_DIR}/package.json" "${WEB_DIR}/package-lock.json"
     "${WEB_DIR}/management.html" "${WEB_DIR}/vite.config.ts" "${WEB_DIR}/tsconfig.json")
set(stale FALSE)
if(NOT EXISTS "${out}")
  set(stale TRUE)
else()
  foreach(src IN LISTS sources)
    if(EXISTS "${src}" AND "${src}" IS_NEWER_THAN "${out}")
      set(stale TRUE)
      break()
    endif()
  endforeach()
endif()

if(stale)
  set(marker "${WEB_DIR}/node_modules/.package-lock.json")
  if(NOT EXISTS "${marker}" OR "${WEB_DIR}/package-lock.json" IS_NEWER_THAN "${marker}")
    message(STATUS "panel build: npm ci")
    execute_process(COMMAND "${NPM}" ci --no-audit --no-fund WORKING_DIRECTORY "${WEB_DIR}"
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "panel build: npm ci failed (${rc})")
    endif()
  endif()
  message(STATUS "panel build: npm run build")
  execute_process(COMMAND "${NPM}" run build WORKING_DIRECTORY "${WEB_DIR}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "panel build: npm run build failed (${rc})")
  endif()
endif()
# Always bump the output so the build system sees it as fresh relative to its dependencies.
file(TOUCH_NOCREATE "${out}")
