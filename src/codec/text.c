/* Text forms of numbers, Timestamp, Duration and FieldMask paths. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_int.h"

size_t gw_codec_fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t gw_codec_fmt_i64(char *out, int64_t v)
{
    if (v < 0) {
        out[0] = '-';
        return 1 + gw_codec_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
    }
    return gw_codec_fmt_u64(out, (uint64_t)v);
}

size_t gw_codec_fmt_double(char *out, double v)
{
    if (v == 0)
        return (size_t)snprintf(out, 32, "%s", signbit(v) ? "-0" : "0");
    /* Integers below 10^15 print the same under %.15g; skip snprintf. */
    double a = fabs(v);
    if (a < 1e15 && v == (double)(int64_t)v)
        return gw_codec_fmt_i64(out, (int64_t)v);
    /* Few decimals (prices, scores): if n / 10^k reads back as v, the
     * digits of n are the shortest form, and %g would print the same fixed
     * notation for 1e-4 <= |v| < 1e15. Division of two exact integers is
     * correctly rounded, like strtod of the same decimal. */
    if (a >= 1e-4 && a < 1e9) {
        static const double pow10[] = {1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
        for (int k = 0; k < 6; k++) {
            double x = rint(a * pow10[k]);
            if (x < 1e15 && x / pow10[k] == a) {
                uint64_t n = (uint64_t)x;
                uint64_t scale = (uint64_t)pow10[k];
                size_t len = 0;
                if (v < 0)
                    out[len++] = '-';
                len += gw_codec_fmt_u64(out + len, n / scale);
                out[len++] = '.';
                uint64_t frac = n % scale;
                char digits[8];
                for (int d = k; d >= 0; d--) {
                    digits[d] = (char)('0' + frac % 10);
                    frac /= 10;
                }
                int last = k;
                while (last > 0 && digits[last] == '0')
                    last--;
                memcpy(out + len, digits, (size_t)last + 1);
                return len + (size_t)last + 1;
            }
        }
    }
    /* 15 significant digits always survive a round trip through double
     * (DBL_DIG), so the first precision that reads back is the shortest. */
    /* Subnormals carry fewer digits: start lower for them. */
    for (int prec = fabs(v) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        int n = snprintf(out, 32, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            return (size_t)n;
    }
    return 0;
}

size_t gw_codec_fmt_float(char *out, float v)
{
    if (v == 0)
        return (size_t)snprintf(out, 32, "%s", signbit(v) ? "-0" : "0");
    if (fabsf(v) < 1e6f && v == (float)(int32_t)v)
        return gw_codec_fmt_i64(out, (int32_t)v);
    for (int prec = fabsf(v) < FLT_MIN ? 1 : 6; prec <= 9; prec++) {
        int n = snprintf(out, 32, "%.*g", prec, (double)v);
        if (prec == 9 || strtof(out, NULL) == v)
            return (size_t)n;
    }
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back: counted in
 * 400-year eras (146097 days) with March as the first month, so that the
 * leap day is the last day of a "year". */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static size_t put_digits(char *out, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return (size_t)width;
}

/* 0, 3, 6 or 9 fraction digits, as few as represent nanos exactly. */
static size_t put_nanos(char *out, uint32_t nanos)
{
    if (nanos == 0)
        return 0;
    out[0] = '.';
    if (nanos % 1000000 == 0)
        return 1 + put_digits(out + 1, nanos / 1000000, 3);
    if (nanos % 1000 == 0)
        return 1 + put_digits(out + 1, nanos / 1000, 6);
    return 1 + put_digits(out + 1, nanos, 9);
}

int gw_codec_fmt_timestamp(char *out, size_t *n, int64_t seconds, int32_t nanos)
{
    if (seconds < GW_TS_MIN_SECONDS || seconds > GW_TS_MAX_SECONDS || nanos < 0 ||
        nanos > 999999999)
        return GW_ERANGE;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    unsigned sod = (unsigned)(seconds - days * 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    size_t k = put_digits(out, (unsigned)y, 4);
    out[k++] = '-';
    k += put_digits(out + k, m, 2);
    out[k++] = '-';
    k += put_digits(out + k, d, 2);
    out[k++] = 'T';
    k += put_digits(out + k, sod / 3600, 2);
    out[k++] = ':';
    k += put_digits(out + k, sod / 60 % 60, 2);
    out[k++] = ':';
    k += put_digits(out + k, sod % 60, 2);
    k += put_nanos(out + k, (uint32_t)nanos);
    out[k++] = 'Z';
    *n = k;
    return 0;
}

int gw_codec_fmt_duration(char *out, size_t *n, int64_t seconds, int32_t nanos)
{
    if (seconds < -GW_DUR_MAX_SECONDS || seconds > GW_DUR_MAX_SECONDS ||
        nanos < -999999999 || nanos > 999999999 || (seconds > 0 && nanos < 0) ||
        (seconds < 0 && nanos > 0))
        return GW_ERANGE;
    size_t k = 0;
    if (seconds < 0 || nanos < 0)
        out[k++] = '-';
    k += gw_codec_fmt_u64(out + k, (uint64_t)(seconds < 0 ? -seconds : seconds));
    k += put_nanos(out + k, (uint32_t)(nanos < 0 ? -nanos : nanos));
    out[k++] = 's';
    *n = k;
    return 0;
}

/* Reads exactly `width` digits. */
static bool get_digits(const char *s, size_t width, unsigned *v)
{
    unsigned r = 0;
    for (size_t i = 0; i < width; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        r = r * 10 + (unsigned)(s[i] - '0');
    }
    *v = r;
    return true;
}

/* A '.' and 1 to 9 digits at s[*i], as nanoseconds. */
static bool get_fraction(const char *s, size_t n, size_t *i, int32_t *nanos)
{
    *nanos = 0;
    if (*i >= n || s[*i] != '.')
        return true;
    size_t k = *i + 1, digits = 0;
    uint32_t v = 0;
    while (k < n && s[k] >= '0' && s[k] <= '9') {
        if (++digits > 9)
            return false;
        v = v * 10 + (uint32_t)(s[k] - '0');
        k++;
    }
    if (digits == 0)
        return false;
    for (size_t j = digits; j < 9; j++)
        v *= 10;
    *nanos = (int32_t)v;
    *i = k;
    return true;
}

static bool leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int gw_codec_parse_timestamp(const char *s, size_t n, int64_t *seconds, int32_t *nanos)
{
    unsigned y, mo, d, h, mi, se;
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n < 20 || !get_digits(s, 4, &y) || s[4] != '-' || !get_digits(s + 5, 2, &mo) ||
        s[7] != '-' || !get_digits(s + 8, 2, &d) || s[10] != 'T' ||
        !get_digits(s + 11, 2, &h) || s[13] != ':' || !get_digits(s + 14, 2, &mi) ||
        s[16] != ':' || !get_digits(s + 17, 2, &se))
        return GW_EPARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 ||
        mi > 59 || se > 59)
        return GW_EPARSE;
    size_t i = 19;
    if (!get_fraction(s, n, &i, nanos))
        return GW_EPARSE;
    int64_t offset = 0;
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        unsigned oh, om;
        if (n - i < 6 || !get_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !get_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return GW_EPARSE;
        offset = (int64_t)(oh * 3600 + om * 60);
        if (s[i] == '-')
            offset = -offset;
        i += 6;
    } else {
        return GW_EPARSE;
    }
    if (i != n)
        return GW_EPARSE;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    if (secs < GW_TS_MIN_SECONDS || secs > GW_TS_MAX_SECONDS)
        return GW_ERANGE;
    *seconds = secs;
    return 0;
}

int gw_codec_parse_duration(const char *s, size_t n, int64_t *seconds, int32_t *nanos)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && s[i] == '-') {
        neg = true;
        i++;
    }
    size_t start = i;
    uint64_t v = 0;
    bool big = false;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v > (uint64_t)GW_DUR_MAX_SECONDS)
            big = true;
        else
            v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i == start)
        return GW_EPARSE;
    if (!get_fraction(s, n, &i, nanos))
        return GW_EPARSE;
    if (i + 1 != n || s[i] != 's')
        return GW_EPARSE;
    if (big || v > (uint64_t)GW_DUR_MAX_SECONDS)
        return GW_ERANGE;
    *seconds = neg ? -(int64_t)v : (int64_t)v;
    if (neg)
        *nanos = -*nanos;
    return 0;
}

bool gw_codec_is_json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t k = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t k = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    return i == n;
}

int gw_codec_parse_integer(const char *s, size_t n, bool *neg, uint64_t *mag)
{
    if (!gw_codec_is_json_number(s, n))
        return GW_EPARSE;
    size_t i = 0;
    *neg = false;
    if (s[0] == '-') {
        *neg = true;
        i++;
    }
    /* The significant digits are s[ds..de) without the '.', value =
     * digits * 10^exp10. */
    size_t ds = i, de;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_end = i, frac_start = i, frac_end = i;
    if (i < n && s[i] == '.') {
        frac_start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        frac_end = i;
    }
    de = frac_end;
    int64_t exp10 = 0;
    if (i < n) { /* exponent */
        i++;
        bool eneg = false;
        if (s[i] == '+' || s[i] == '-')
            eneg = s[i++] == '-';
        while (i < n) {
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (s[i] - '0');
            i++;
        }
        if (eneg)
            exp10 = -exp10;
    }
    exp10 -= (int64_t)(frac_end - frac_start);
    /* Walk the digits as one string, skipping the '.'. */
    char digits[64];
    size_t nd = 0;
    bool nonzero_dropped = false;
    for (size_t k = ds; k < de; k++) {
        if (k == int_end)
            continue;
        char c = s[k];
        if (nd == 0 && c == '0')
            continue;
        if (nd < sizeof digits)
            digits[nd++] = c;
        else if (c != '0')
            nonzero_dropped = true;
        else
            exp10++; /* a trailing zero beyond our window */
    }
    if (nonzero_dropped)
        return GW_ERANGE;
    /* digits past the window were zeros; the window is 64 > 20 digits, so a
     * value that fits has already failed the size test below if needed. */
    while (nd > 0 && digits[nd - 1] == '0') {
        nd--;
        exp10++;
    }
    if (nd == 0) {
        *neg = false;
        *mag = 0;
        return 0;
    }
    if (exp10 < 0)
        return GW_ERANGE;
    if ((int64_t)nd + exp10 > 20)
        return GW_ERANGE;
    uint64_t v = 0;
    for (int64_t k = 0; k < (int64_t)nd + exp10; k++) {
        unsigned dgt = k < (int64_t)nd ? (unsigned)(digits[k] - '0') : 0;
        if (v > (UINT64_MAX - dgt) / 10)
            return GW_ERANGE;
        v = v * 10 + dgt;
    }
    *mag = v;
    return 0;
}

int gw_codec_snake_to_camel(gw_buf *out, const char *s, size_t n)
{
    int rc = gw_buf_reserve(out, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            return GW_ERANGE;
        if (c == '_') {
            if (i + 1 >= n || s[i + 1] < 'a' || s[i + 1] > 'z')
                return GW_ERANGE;
            c = (char)(s[++i] - 'a' + 'A');
        }
        out->data[out->len++] = (uint8_t)c;
    }
    out->data[out->len] = 0;
    return 0;
}

int gw_codec_camel_to_snake(gw_buf *out, const char *s, size_t n)
{
    int rc = gw_buf_reserve(out, 2 * n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '_')
            return GW_EPARSE;
        if (c >= 'A' && c <= 'Z') {
            out->data[out->len++] = '_';
            c = (char)(c - 'A' + 'a');
        }
        out->data[out->len++] = (uint8_t)c;
    }
    out->data[out->len] = 0;
    return 0;
}
