#!/usr/bin/env python3
"""Seeds a running moto_server for the tests: an IAM user with an access key and an allow-all
policy, the test bucket, the customer AWS accounts the AWS source is tested against (each with a
role to assume and a mix of compliant and non-compliant resources: Tests/Peers/aws_world.py),
then turns signature checking on. Prints `export` lines."""
import os
import sys
import urllib.request

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Peers"))
import aws_world  # noqa: E402

endpoint = sys.argv[1]
session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name="us-east-1")
iam = session.client("iam", endpoint_url=endpoint)
iam.create_user(UserName="lightsail-ci")
iam.put_user_policy(UserName="lightsail-ci", PolicyName="all", PolicyDocument=(
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'))
key = iam.create_access_key(UserName="lightsail-ci")["AccessKey"]
s3 = boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                           region_name="us-east-1").client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket="lightsail-test")
aws_world.seed(endpoint, boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                               region_name="us-east-1"))
request = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
urllib.request.urlopen(request).read()
print(f"export LIGHTSAIL_TEST_S3_ACCESS_KEY_ID={key['AccessKeyId']}")
print(f"export LIGHTSAIL_TEST_S3_SECRET_ACCESS_KEY={key['SecretAccessKey']}")
print("export LIGHTSAIL_TEST_S3_BUCKET=lightsail-test")
