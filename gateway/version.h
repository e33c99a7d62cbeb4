/* The version of conflux, from CMake's project(VERSION). */
#ifndef CF_VERSION_H
#define CF_VERSION_H

/** "MAJOR.MINOR.PATCH". */
extern const char cf_version[];

#endif
