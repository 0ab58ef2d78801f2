#!/bin/sh
# mkcerts.sh DIR - the certificates of the TLS tests, made fresh by each test
# run with the openssl tool (EC P-256 keys: fast to make). In DIR:
#   ca.crt ca.key          the test CA
#   other-ca.crt           another CA, which signed nothing the servers use
#   server.crt/.key        signed by ca: IP 127.0.0.1, IP ::1, DNS localhost
#   localhost.crt/.key     signed by ca: DNS localhost only (no IP)
#   wronghost.crt/.key     signed by ca: DNS wrong.example, IP 127.0.0.2
#   expired.crt/.key       signed by ca: IP 127.0.0.1, valid only in January 2020
#   soon.crt/.key          signed by ca: IP 127.0.0.1, expires in 5 days
#   sni.crt/.key           signed by ca: DNS sni.example only
#   client.crt/.key        signed by ca: a client certificate (CN dlock-client)
#   rogue-client.crt/.key  signed by other-ca: a client certificate no server trusts
set -eu
d=$1
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
ca() { # name CN
    key "$1"
    openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 400 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() { # name CN SAN CA [extra x509 args]
    n=$1 cn=$2 san=$3 signer=$4
    shift 4
    key "$n"
    openssl req -new -key "$n.key" -out "$n.csr" -subj "/CN=$cn" ${san:+-addext "subjectAltName=$san"}
    openssl x509 -req -in "$n.csr" -CA "$signer.crt" -CAkey "$signer.key" -CAcreateserial \
        -days "${DAYS:-365}" -copy_extensions copy -out "$n.crt" "$@" 2>/dev/null
}
ca ca "dlock test CA"
ca other-ca "dlock other CA"
leaf server server "IP:127.0.0.1,IP:::1,DNS:localhost" ca
leaf localhost localhost "DNS:localhost" ca
leaf wronghost wrong.example "DNS:wrong.example,IP:127.0.0.2" ca
leaf sni sni.example "DNS:sni.example" ca
leaf client dlock-client "" ca
leaf rogue-client rogue "" other-ca
DAYS=5 leaf soon soon "IP:127.0.0.1" ca
# A certificate whose validity ended long ago: `openssl ca` takes explicit
# dates (OpenSSL 3.0's req/x509 have no -not_before/-not_after).
key expired
openssl req -new -key expired.key -out expired.csr -subj /CN=expired \
    -addext "subjectAltName=IP:127.0.0.1"
mkdir -p cadb
: > cadb/index.txt
echo 1000 > cadb/serial
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = cadb/index.txt
new_certs_dir = cadb
serial = cadb/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
CNF
openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -out expired.crt \
    -startdate 20200101000000Z -enddate 20200201000000Z -notext 2>/dev/null
chmod 600 ./*.key
echo ok
