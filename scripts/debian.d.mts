export declare const DEBIAN_PACKAGES: { check: string; pkg: string }[];
export declare function ensureDebianPackages(): void;
