/** The version reported by `--version`, the OpenAPI document and `build_info`. */
export const VERSION = "0.1.0";
