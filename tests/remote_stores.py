"""Real servers on loopback for the remote-source tests: nginx (Debian's package, `make nginx`)
serving a folder with range requests and an access log of every range it sent, and moto's
standalone S3 server, which s3fs talks to over HTTP exactly as to S3."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

# The access log's line: the request, its Range header and the bytes of body sent for it.
_LOG_FORMAT = "'$request_method $uri $status \"$http_range\" $body_bytes_sent'"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@dataclass
class Nginx:
    url: str  # http://127.0.0.1:PORT/ (the served folder's root)
    root: Path
    access_log: Path

    def requests(self) -> list[tuple[str, str, int, str, int]]:
        """(method, path, status, range header, body bytes) of every request so far."""
        rows = []
        for line in self.access_log.read_text().splitlines():
            method, path, status, rest = line.split(" ", 3)
            header, _, sent = rest.rpartition(" ")
            rows.append((method, path, int(status), header.strip('"'), int(sent)))
        return rows


@contextmanager
def nginx_serving(root: Path, work: Path) -> Iterator[Nginx]:
    """nginx on a free loopback port serving root (ranges, ETag and Last-Modified as it always
    does; under /weak/ no ETag), its config, logs and temp folders in work; stopped afterwards."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "access.log"
    conf = work / "nginx.conf"
    # As root nginx hands its worker to an unprivileged user, who cannot enter pytest's tmp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""
daemon off;
{user}
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  log_format ranges {_LOG_FORMAT};
  access_log {log} ranges;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location /private/ {{ return 403; }}  # what a server that denies the request answers
    location /weak/ {{ etag off; }}  # Last-Modified only: no strong version to key it by
  }}
}}
""")
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(work), "-e", str(work / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(port)
        yield Nginx(f"http://127.0.0.1:{port}/", root, log)
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def moto_s3(env: dict | None = None) -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL. Sets the standard AWS
    environment (AWS_ENDPOINT_URL_S3, test keys) for this process while it runs, as a node's
    environment would point s3fs at an S3-compatible store."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = dict(os.environ)
    os.environ.update(s3_environment(endpoint))
    _forget_s3_clients()
    try:
        yield endpoint
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _forget_s3_clients()
        server.stop()


def _forget_s3_clients() -> None:
    """Drop s3fs's cached filesystems: one made while another moto server ran (another test
    module's) would still talk to that server's endpoint."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def s3_environment(endpoint: str) -> dict[str, str]:
    """The standard variables botocore reads: the endpoint, a region and (moto's) keys."""
    return {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret")


def _moto_auth(endpoint: str, unauthenticated_requests: str) -> None:
    """moto's switch for IAM: requests past this many are authenticated and authorised ('inf': none)."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", method="POST",
                                     data=unauthenticated_requests.encode(),
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()


@contextmanager
def iam_enforced(endpoint: str, readable_buckets: list[str]) -> Iterator[dict[str, str]]:
    """An IAM user on moto's server allowed to read (s3:GetObject, s3:ListBucket) readable_buckets
    only, every other bucket denied it; yields its keys as the standard AWS variables. Until exit
    moto authenticates and authorises every request as S3 does (signatures checked, policies
    applied), so the default test keys are refused too. The switch is moto's, for the process."""
    import json

    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    user = f"reader{free_port()}"  # unique per call: the IAM backend outlives one test
    iam.create_user(UserName=user)
    resources = [arn for bucket in readable_buckets
                 for arn in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*")]
    iam.put_user_policy(UserName=user, PolicyName="read-some", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": resources}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    _moto_auth(endpoint, "0")
    try:
        yield {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    finally:
        _moto_auth(endpoint, "inf")
