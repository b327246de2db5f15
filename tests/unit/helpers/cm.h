/* cmocka with the standard headers it expects to be included first. */
#ifndef EVR_TESTS_CM_H
#define EVR_TESTS_CM_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#endif
