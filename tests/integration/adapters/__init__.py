"""Each AWS adapter of the function against the strict local AWS (moto in server mode, IAM enforced),
called under the template's own function role: real requests, real answers, no mocks of AWS."""
