#ifndef LIGHTSAIL_COPENSSL_SHIM_H
#define LIGHTSAIL_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/core_names.h>
#endif
