"""A real S3-compatible server on loopback for storage tests: moto in server mode, in a
thread of the test process, reached over HTTP by the tests and by the processes they start
(web, workers) exactly as MinIO or AWS S3 would be."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

from bench.common import free_port

ACCESS_KEY, SECRET_KEY, REGION = "test-key", "test/secret+key", "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    client: object  # boto3's S3 client, for the tests' own looks into the bucket

    @property
    def storage_url(self) -> str:
        """STORAGE_URL for the bucket: keys in the URL, URL-encoded (the secret has a / and
        a +, as AWS's often do)."""
        from urllib.parse import quote

        return (
            f"s3://{quote(ACCESS_KEY, safe='')}:{quote(SECRET_KEY, safe='')}@{self.bucket}"
            f"?endpoint_url={self.endpoint}&region={REGION}"
        )

    def object_keys(self) -> list[str]:
        answer = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


@contextmanager
def running_s3(bucket: str = "stt-audio") -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port with ``bucket`` made, stopped on the way out."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        client.create_bucket(Bucket=bucket)
        yield S3Server(endpoint, bucket, client)
    finally:
        server.stop()
