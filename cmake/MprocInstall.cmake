# Installs the library, its headers and an exported package, so that
# find_package(mproc) gives consumers the target mproc::mproc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MPROC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)

install(TARGETS mproc EXPORT mprocTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mproc DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mprocTargets NAMESPACE mproc:: DESTINATION ${MPROC_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mprocConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mprocConfig.cmake INSTALL_DESTINATION ${MPROC_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mprocConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mprocConfig.cmake ${PROJECT_BINARY_DIR}/mprocConfigVersion.cmake
  DESTINATION ${MPROC_CMAKE_DIR})
