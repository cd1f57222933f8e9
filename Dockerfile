# Call centre on Ubuntu's Asterisk package. Not built in CI: the development machines have no Docker
# engine. Build: docker build -t callcenter .   Run: docker run --network host callcenter
FROM ubuntu:24.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      asterisk asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm \
      python3 python3-venv python3-pip sip-tester ffmpeg espeak-ng sox openssl curl lftp make \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/callcenter
COPY . .
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -e . \
 && .venv/bin/callcenter asterisk install

# The controller renders Asterisk's configuration under var/ and runs the distribution's Asterisk.
ENV CALLCENTER_ASTERISK__MODE=system CALLCENTER_WEB__BIND=0.0.0.0 CALLCENTER_FTPS__BIND=0.0.0.0
# SIP, the panel, FTPS control and its passive data ports.
EXPOSE 5060/udp 8080/tcp 2121/tcp 30000-30049/tcp
CMD [".venv/bin/callcenter", "run"]
