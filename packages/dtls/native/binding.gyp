{
  "targets": [
    {
      "target_name": "tips_dtls",
      "sources": ["tips_dtls.c"],
      "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-fvisibility=hidden"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    }
  ]
}
