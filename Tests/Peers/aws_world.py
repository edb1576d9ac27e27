"""AWS accounts seeded into a moto_server through its API, for the AWS source's tests and the
demo recordings: each account holds a role the pipeline assumes (cross-account, with an external
id) and a chosen mix of compliant and non-compliant resources.

moto checks signatures and IAM policies once `reset-auth` is posted; these must be seeded before
that (scripts/seed-moto.py does), because a role assumed into another account is authorized by
that role's own policies, which have to exist first.
"""
import json

import boto3

ROLE = "lightsail-audit"
EXTERNAL_ID = "lightsail-ext-7f3a"
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READ_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}

# What each account holds. "good" is mostly compliant, "poor" mostly not.
ACCOUNTS = {
    "good": "111122223333",
    "poor": "444455556666",
    "acme": "210987654321",
    "globex": "312345678901",
    "limited": "777788889999",
}


def role_arn(account):
    return f"arn:aws:iam::{account}:role/{ROLE}"


def session_in(endpoint, base, account, region="us-east-1"):
    """A boto3 session acting inside `account`, through the audit role (created on first use)."""
    sts = base.client("sts", endpoint_url=endpoint)
    creds = sts.assume_role(RoleArn=role_arn(account), RoleSessionName="seed", ExternalId=EXTERNAL_ID)["Credentials"]
    return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"], region_name=region)


def seed_account(endpoint, base, account, profile, regions=("us-east-1",)):
    s = session_in(endpoint, base, account)
    iam = s.client("iam", endpoint_url=endpoint)
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}}]}
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=ROLE, PolicyName="audit", PolicyDocument=json.dumps(ADMIN))
    if profile == "limited":
        # The role may not read the credential report: AccessDenied, recorded as not collected.
        iam.put_role_policy(RoleName=ROLE, PolicyName="no-report", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Resource": "*",
                                                    "Action": ["iam:GenerateCredentialReport", "iam:GetCredentialReport"]}]}))

    good = profile in ("good", "acme")
    # People: one with console access and MFA, one with console access and none.
    for name, mfa in (("alice", True), ("bob", good)):
        iam.create_user(UserName=name)
        iam.create_login_profile(UserName=name, Password="Correct-Horse-9!")
        if mfa:
            device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-phone")["VirtualMFADevice"]
            iam.enable_mfa_device(UserName=name, SerialNumber=device["SerialNumber"],
                                  AuthenticationCode1="123456", AuthenticationCode2="654321")
    iam.create_user(UserName="deploy-bot")
    iam.create_access_key(UserName="deploy-bot")
    # Policies: a read-only one everywhere, and `*:*` attached to a group where it is poor.
    readonly = iam.create_policy(PolicyName="s3-read", PolicyDocument=json.dumps(READ_S3))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="deploy-bot", PolicyArn=readonly)
    iam.create_group(GroupName="engineers")
    iam.add_user_to_group(GroupName="engineers", UserName="alice")
    if not good:
        everything = iam.create_policy(PolicyName="everything", PolicyDocument=json.dumps(ADMIN))["Policy"]["Arn"]
        iam.attach_group_policy(GroupName="engineers", PolicyArn=everything)
        # Not an administrator on paper, but able to make itself one: a role handed to a function it creates.
        deployer = iam.create_policy(PolicyName="ci-deployer", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="deploy-bot", PolicyArn=deployer)
    if good:
        iam.update_account_password_policy(MinimumPasswordLength=14, RequireSymbols=True, RequireNumbers=True,
                                           RequireUppercaseCharacters=True, RequireLowercaseCharacters=True,
                                           MaxPasswordAge=90, PasswordReusePrevention=24)

    region = regions[0]
    s3 = s.client("s3", endpoint_url=endpoint)
    logs = f"{profile}-audit-logs"
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_encryption(Bucket=logs, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    s3.put_public_access_block(Bucket=logs, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_versioning(Bucket=logs, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=logs, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{logs}", f"arn:aws:s3:::{logs}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "CloudTrail", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{logs}/*"}]}))
    if not good:
        s3.create_bucket(Bucket=f"{profile}-public-assets")

    ct = s.client("cloudtrail", endpoint_url=endpoint)
    ct.create_trail(Name="org-trail", S3BucketName=logs, IsMultiRegionTrail=good, EnableLogFileValidation=good)
    if good:
        ct.start_logging(Name="org-trail")

    for r in regions:
        ec2 = s.client("ec2", endpoint_url=endpoint, region_name=r)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        web = ec2.create_security_group(GroupName="web", Description="public web", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        if not good:
            ssh = ec2.create_security_group(GroupName="ssh-anywhere", Description="legacy bastion", VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=ssh, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
        if good:
            ec2.enable_ebs_encryption_by_default()
            ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogDestinationType="s3",
                                 LogDestination=f"arn:aws:s3:::{logs}")
        kms = s.client("kms", endpoint_url=endpoint, region_name=r)
        key = kms.create_key(Description="application data")["KeyMetadata"]["KeyId"]
        if good:
            kms.enable_key_rotation(KeyId=key)
        rds = s.client("rds", endpoint_url=endpoint, region_name=r)
        rds.create_db_instance(DBInstanceIdentifier="orders", DBInstanceClass="db.t3.micro", Engine="postgres",
                               MasterUsername="app", MasterUserPassword="not-a-real-secret-1", AllocatedStorage=20,
                               StorageEncrypted=good, PubliclyAccessible=not good, BackupRetentionPeriod=7 if good else 0)
        if good:
            s.client("guardduty", endpoint_url=endpoint, region_name=r).create_detector(Enable=True)


def seed(endpoint, base):
    """Every account above, each through its own role."""
    for profile, account in ACCOUNTS.items():
        seed_account(endpoint, base, account, profile)
