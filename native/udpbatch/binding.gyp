{
  "targets": [
    {
      "target_name": "udpbatch",
      "sources": ["udpbatch.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
