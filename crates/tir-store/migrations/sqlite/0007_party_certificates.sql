-- A party may be bound to a client certificate (mutual TLS): the SHA-256 of
-- the certificate's DER, lowercase hex. A bound party's token then works only
-- over a connection that presented that certificate.
ALTER TABLE parties ADD COLUMN certificate_sha256 TEXT;
