{
  "targets": [
    {
      "target_name": "mallocopt",
      "sources": ["mallocopt.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
