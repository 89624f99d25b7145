#!/usr/bin/python3
"""Pre-create the benchmark accounts for a server whose own tool would cost
one process start per account.

    accounts.py prosody DATA_DIR DOMAIN COUNT PASSWORD_PREFIX

Prosody: writes DATA_DIR/<host>/accounts/benchN.dat in the layout of
mod_auth_internal_hashed (SCRAM-SHA-1: hex stored_key and server_key, a
salt and the iteration count, 4096 like the other two servers), exactly
what `prosodyctl register` would store, for N in 1..COUNT with password
PASSWORD_PREFIX + N (tsung's scheme).
"""
import hashlib
import hmac
import os
import sys
import uuid

ITERATIONS = 4096


def prosody_encode(s):
    # util.datamanager: every character outside [a-zA-Z0-9] becomes %xx
    return "".join(c if c.isascii() and c.isalnum() else "%%%02x" % ord(c) for c in s)


def scram_sha1(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).hexdigest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).hexdigest()
    return stored_key, server_key


def prosody(data_dir, domain, count, prefix):
    d = os.path.join(data_dir, prosody_encode(domain), "accounts")
    os.makedirs(d, exist_ok=True)
    for i in range(1, count + 1):
        salt = str(uuid.uuid4())
        stored, server = scram_sha1(prefix + str(i), salt, ITERATIONS)
        with open(os.path.join(d, prosody_encode("bench%d" % i) + ".dat"), "w") as f:
            f.write('return {\n\t["iteration_count"] = %d;\n\t["salt"] = "%s";\n'
                    '\t["server_key"] = "%s";\n\t["stored_key"] = "%s";\n};\n'
                    % (ITERATIONS, salt, server, stored))


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "prosody":
        sys.exit(__doc__)
    prosody(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
