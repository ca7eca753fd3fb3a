{
  "targets": [
    {
      "target_name": "xcrypt",
      "sources": ["xcrypt.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "libraries": ["-lcrypt"]
    }
  ]
}
