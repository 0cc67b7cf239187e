"""Reads X.509 certificates with Python's `cryptography` (Debian: python3-cryptography)
for the zhuanfu interop tests: one JSON object per PEM file named on the command line,
{file: {cn, uid, ca, eku, dns, ip, uri}}, or a non-zero exit naming the file that failed.
"""
import json
import sys

import cryptography
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID


def read(path):
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())

    def names(oid):
        return [a.value for a in cert.subject.get_attributes_for_oid(oid)]

    def extension(oid):
        try:
            return cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            return None

    eku = extension(ExtensionOID.EXTENDED_KEY_USAGE)
    san = extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    basic = extension(ExtensionOID.BASIC_CONSTRAINTS)
    return {
        "cn": (names(NameOID.COMMON_NAME) or [""])[0],
        "uid": (names(NameOID.USER_ID) or [""])[0],
        "ca": bool(basic and basic.ca),
        "eku": [oid.dotted_string for oid in eku] if eku else [],
        "dns": san.get_values_for_type(x509.DNSName) if san else [],
        "ip": [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] if san else [],
        "uri": san.get_values_for_type(x509.UniformResourceIdentifier) if san else [],
    }


def main():
    if sys.argv[1:] == ["version"]:
        print(cryptography.__version__)
        return 0
    out = {}
    for path in sys.argv[1:]:
        try:
            out[path] = read(path)
        except Exception as e:  # the test prints what the library said
            print(f"{path}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    print(json.dumps(out))
    return 0


sys.exit(main())
