#!/bin/sh
# The compose stack's TLS for Kafka (docs/design/kafka-trust.md): a private CA, and the broker's key and
# certificate signed by it. Run once by the one-shot `kafka-tls` service of deploy/compose.yaml; a second
# run keeps what exists (so clients holding the CA keep trusting the broker).
#
#   tls-init.sh PKI_DIR [BROKER_UID]
#
#   PKI_DIR/ca-key/ca.key                   the CA's private key: only this job ever mounts it
#   PKI_DIR/ca/ca.crt                       the CA certificate every client checks the broker with
#   PKI_DIR/broker/broker-keystore.pem      the broker's key and certificate (PEM keystore, 0400,
#                                           owned by BROKER_UID: the apache/kafka image's appuser)
#   PKI_DIR/broker/ca.crt                   the CA again, for the broker's own inter-broker client
#
# The brokers' certificate (one, shared by the three nodes) names `kafka` and `kafka-1`..`kafka-3` (the
# compose network), `localhost` and 127.0.0.1 (the host ports), and is valid for DAYS days: renew it by deleting broker-keystore.pem and running this again.
set -eu

pki=${1:?usage: tls-init.sh PKI_DIR [BROKER_UID]}
broker_uid=${2:-1000}
days=${DAYS:-825}
umask 077
mkdir -p "$pki/ca-key" "$pki/ca" "$pki/broker"
chmod 0700 "$pki/ca-key"
chmod 0755 "$pki/ca" "$pki/broker"  # the broker (BROKER_UID) and the clients read their files

if [ ! -s "$pki/ca-key/ca.key" ] || [ ! -s "$pki/ca/ca.crt" ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=flexledger-kafka-ca" \
    -keyout "$pki/ca-key/ca.key" -out "$pki/ca/ca.crt" 2>/dev/null
  rm -f "$pki/broker/broker-keystore.pem"  # signed by the old CA, if any
  echo "kafka-tls: new CA"
fi
chmod 0444 "$pki/ca/ca.crt"
cp "$pki/ca/ca.crt" "$pki/broker/ca.crt"
chmod 0444 "$pki/broker/ca.crt"

if [ ! -s "$pki/broker/broker-keystore.pem" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  openssl req -newkey rsa:3072 -nodes -subj "/CN=kafka" \
    -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
  printf 'subjectAltName=DNS:kafka,DNS:kafka-1,DNS:kafka-2,DNS:kafka-3,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > "$work/san.ext"
  openssl x509 -req -in "$work/broker.csr" -CA "$pki/ca/ca.crt" -CAkey "$pki/ca-key/ca.key" \
    -CAcreateserial -CAserial "$work/ca.srl" -days "$days" -extfile "$work/san.ext" \
    -out "$work/broker.crt" 2>/dev/null
  # Kafka's PEM keystore: the unencrypted PKCS#8 key, then the certificate (no keystore password).
  cat "$work/broker.key" "$work/broker.crt" > "$pki/broker/broker-keystore.pem"
  echo "kafka-tls: new broker certificate (kafka, kafka-1..3, localhost, 127.0.0.1; $days days)"
fi
chown "$broker_uid" "$pki/broker/broker-keystore.pem" 2>/dev/null || true
chmod 0400 "$pki/broker/broker-keystore.pem"
openssl verify -CAfile "$pki/ca/ca.crt" "$pki/broker/broker-keystore.pem" >/dev/null
echo "kafka-tls: ready in $pki"
