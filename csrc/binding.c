/*
 * wageubn._C: the only file that knows CPython and NumPy.  It converts
 * arguments to C-contiguous float32 arrays, checks every shape and width,
 * allocates the outputs and calls the kernels with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "checked.h"
#include "wageubn.h"

/* ------------------------------------------------------------------------ */
/* Argument helpers                                                         */
/* ------------------------------------------------------------------------ */

/* A new reference to a C-contiguous float32 copy (or view) of obj, or NULL
 * with TypeError when obj is not real-valued numeric data. */
static PyArrayObject *as_f32(PyObject *obj, const char *name)
{
    PyArrayObject *any = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!any) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a real-valued array-like, got %.200s", name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    char kind = PyArray_DESCR(any)->kind;
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        PyObject *dt = PyObject_Str((PyObject *)PyArray_DESCR(any));
        PyErr_Format(PyExc_TypeError, "%s: expected a real-valued numeric array, got dtype %S",
                     name, dt ? dt : Py_None);
        Py_XDECREF(dt);
        Py_DECREF(any);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_OTF(
        (PyObject *)any, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    Py_DECREF(any);
    return arr;
}

/* Like as_f32, but None gives NULL without an error (*ok stays 1). */
static PyArrayObject *as_f32_optional(PyObject *obj, const char *name, int *ok)
{
    *ok = 1;
    if (obj == NULL || obj == Py_None)
        return NULL;
    PyArrayObject *arr = as_f32(obj, name);
    *ok = arr != NULL;
    return arr;
}

static int check_ndim(PyArrayObject *a, int ndim, const char *name, const char *layout)
{
    if (PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s: expected a %d-d array %s, got a %d-d array", name,
                     ndim, layout, PyArray_NDIM(a));
        return -1;
    }
    return 0;
}

static int check_vector(PyArrayObject *a, npy_intp len, const char *name)
{
    if (a && (PyArray_NDIM(a) != 1 || PyArray_DIM(a, 0) != len)) {
        PyErr_Format(PyExc_ValueError, "%s: expected shape (%zd,), got a %d-d array of %zd elements",
                     name, (Py_ssize_t)len, PyArray_NDIM(a), (Py_ssize_t)PyArray_SIZE(a));
        return -1;
    }
    return 0;
}

/* An int argument in [lo, hi] (anything with __index__, not a bool), or TypeError /
 * ValueError naming it.  `what` prefixes the name (e.g. a format's name), or is NULL. */
static int get_int(PyObject *o, const char *what, const char *name, long long lo, long long hi,
                   long long *out)
{
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    if (o == NULL || PyBool_Check(o) || !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s%s%s: expected an int, got %.100s", what, sep, name,
                     o ? Py_TYPE(o)->tp_name : "nothing");
        return -1;
    }
    PyObject *index = PyNumber_Index(o);
    int overflow = 0;
    long long v = index ? PyLong_AsLongLongAndOverflow(index, &overflow) : -1;
    Py_XDECREF(index);
    if (!index || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        overflow = 1;
    }
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s%s%s: expected an int in [%lld, %lld], got %S", what, sep,
                     name, lo, hi, o);
        return -1;
    }
    *out = v;
    return 0;
}

/* A real-number argument, or TypeError naming it. */
static int get_double(PyObject *o, const char *name, double *out)
{
    double v = (o && PyNumber_Check(o) && !PyComplex_Check(o)) ? PyFloat_AsDouble(o) : -1.0;
    if (!o || !PyNumber_Check(o) || PyComplex_Check(o) || (v == -1.0 && PyErr_Occurred())) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a real number, got %.100s", name,
                     o ? Py_TYPE(o)->tp_name : "nothing");
        return -1;
    }
    *out = v;
    return 0;
}

/* An optional int argument: `dflt` when absent (NULL). */
static int opt_int(PyObject *o, const char *name, long long lo, long long hi, long long dflt,
                   long long *out)
{
    if (o == NULL) {
        *out = dflt;
        return 0;
    }
    return get_int(o, NULL, name, lo, hi, out);
}

/* A format given as (kind, dec, all): kind 0 none, 1 directquant, 2 alldirectquant. */
static int parse_format(PyObject *obj, wg_format *f, const char *name)
{
    long long kind, dec, all;
    if (obj == NULL || obj == Py_None) {
        *f = wg_format_make(WG_FMT_NONE, 1, 1);
        return 0;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3) {
        PyErr_Format(PyExc_TypeError, "%s: expected None or a tuple (kind, dec, all) of ints, got %.100s",
                     name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (get_int(PyTuple_GET_ITEM(obj, 0), name, "kind", 0, 2, &kind))
        return -1;
    if (kind == WG_FMT_NONE) { /* no quantization: the widths are not used */
        *f = wg_format_make(WG_FMT_NONE, 1, 1);
        return 0;
    }
    if (get_int(PyTuple_GET_ITEM(obj, 1), name, "dec", -WG_MAX_WIDTH, WG_MAX_WIDTH, &dec) ||
        get_int(PyTuple_GET_ITEM(obj, 2), name, "all", 1, WG_MAX_WIDTH, &all))
        return -1;
    *f = wg_format_make((wg_fmt_kind)kind, (int)dec, (int)all);
    return 0;
}

/* A sequence of `n` ints, each in [lo, 2**63 - 1]: the shape checks (shape.c) then name the
 * argument whose value leaves a size beyond int64. */
static int parse_ints(PyObject *obj, int64_t *out, int n, int64_t lo, const char *name)
{
    PyObject *seq = obj ? PySequence_Fast(obj, "") : NULL;
    if (!seq || PySequence_Fast_GET_SIZE(seq) != n) {
        Py_XDECREF(seq);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a sequence of %d ints", name, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        long long v;
        if (PyBool_Check(item) || !PyIndex_Check(item)) {
            /* the message first: the sequence may be the item's only owner */
            PyErr_Format(PyExc_TypeError, "%s: expected a sequence of %d ints, item %d is %.100s",
                         name, n, i, Py_TYPE(item)->tp_name);
            Py_DECREF(seq);
            return -1;
        }
        if (get_int(item, NULL, name, lo, INT64_MAX, &v)) {
            Py_DECREF(seq);
            return -1;
        }
        out[i] = (int64_t)v;
    }
    Py_DECREF(seq);
    return 0;
}

/* More threads than this is a mistake (and libgomp aborts the process on absurd counts). */
#define WG_MAX_THREADS 256

static int get_threads(PyObject *o, int *nthreads)
{
    long long v;
    if (opt_int(o, "nthreads", 1, WG_MAX_THREADS, 1, &v))
        return -1;
    *nthreads = (int)v;
    return 0;
}

static PyArrayObject *new_f32(int ndim, const npy_intp *dims)
{
    return (PyArrayObject *)PyArray_SimpleNew(ndim, (npy_intp *)dims, NPY_FLOAT32);
}

#define F32(a) ((float *)PyArray_DATA(a))
#define F32_OR_NULL(a) ((a) ? (const float *)PyArray_DATA(a) : NULL)

/* ------------------------------------------------------------------------ */
/* Quantizers                                                               */
/* ------------------------------------------------------------------------ */

static PyObject *py_quantize(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"x", "fmt", "nthreads", NULL};
    PyObject *xo, *fo, *nto = NULL;
    wg_format f;
    int nthreads;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:quantize", names, &xo, &fo, &nto) ||
        parse_format(fo, &f, "fmt") || get_threads(nto, &nthreads))
        return NULL;
    PyArrayObject *x = as_f32(xo, "x");
    if (!x)
        return NULL;
    PyArrayObject *out = new_f32(PyArray_NDIM(x), PyArray_DIMS(x));
    if (out) {
        Py_BEGIN_ALLOW_THREADS
        wg_quantize_array(F32(out), F32(x), (size_t)PyArray_SIZE(x), &f, nthreads);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(x);
    return (PyObject *)out;
}

/* Whether two arrays hold the same float32 values bit for bit (same shape): how layers
 * check, at memory speed, that a cached quantized weight is still valid. */
static PyObject *py_same(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"a", "b", NULL};
    PyObject *ao, *bo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO:same", names, &ao, &bo))
        return NULL;
    PyArrayObject *a = as_f32(ao, "a"), *b = a ? as_f32(bo, "b") : NULL;
    int same = 0;
    if (a && b && PyArray_NDIM(a) == PyArray_NDIM(b) &&
        PyArray_CompareLists(PyArray_DIMS(a), PyArray_DIMS(b), PyArray_NDIM(a))) {
        const size_t bytes = (size_t)PyArray_SIZE(a) * sizeof(float);
        Py_BEGIN_ALLOW_THREADS
        same = memcmp(PyArray_DATA(a), PyArray_DATA(b), bytes) == 0;
        Py_END_ALLOW_THREADS
    }
    Py_XDECREF(a);
    Py_XDECREF(b);
    if (PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(same);
}

/* Whether the AVX2/FMA kernels run now (the CPU has them and WAGEUBN_PORTABLE is unset). */
static PyObject *py_simd_available(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    return PyBool_FromLong(wg_simd_available());
}

static PyObject *py_int8_available(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    return PyBool_FromLong(wg_int8_available());
}

enum { Q_SROUND, Q_SHIFT, Q_CONST, Q_ERROR };

/* The range-based quantizers share one argument layout: (x, k, k_dr, seed). */
static PyObject *range_quant(PyObject *args, PyObject *kw, int which, const char *fmt)
{
    static char *names[] = {"x", "k", "k_dr", "seed", NULL};
    PyObject *xo, *ko = NULL, *kdro = NULL, *seedo = NULL;
    long long k = 8, k_dr = 8;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, names, &xo, &ko, &kdro, &seedo))
        return NULL;
    if ((which != Q_SROUND &&
         opt_int(ko, "k", which == Q_CONST ? -WG_MAX_WIDTH : 1, WG_MAX_WIDTH, 8, &k)) ||
        (which == Q_CONST && opt_int(kdro, "k_dr", 1, WG_MAX_WIDTH, 8, &k_dr)))
        return NULL;
    unsigned long long seed = 0;
    if (seedo) {
        if (PyBool_Check(seedo) || !PyLong_Check(seedo)) {
            PyErr_Format(PyExc_TypeError, "seed: expected an int, got %.100s", Py_TYPE(seedo)->tp_name);
            return NULL;
        }
        seed = PyLong_AsUnsignedLongLongMask(seedo); /* any int, taken modulo 2**64 */
        if (seed == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
    }
    PyArrayObject *x = as_f32(xo, "x");
    if (!x)
        return NULL;
    PyArrayObject *out = new_f32(PyArray_NDIM(x), PyArray_DIMS(x));
    if (out) {
        float *o = F32(out);
        const float *in = F32(x);
        size_t n = (size_t)PyArray_SIZE(x);
        Py_BEGIN_ALLOW_THREADS
        switch (which) {
        case Q_SROUND: wg_sround(o, in, n, (uint64_t)seed); break;
        case Q_SHIFT: wg_shiftquant(o, in, n, (int)k); break;
        case Q_CONST: wg_constquant(o, in, n, (int)k_dr, (int)k, (uint64_t)seed); break;
        default: wg_errorquant(o, in, n, (int)k); break;
        }
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(x);
    return (PyObject *)out;
}

static PyObject *py_sround(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return range_quant(args, kw, Q_SROUND, "O|$OOO:sround");
}

static PyObject *py_shiftquant(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return range_quant(args, kw, Q_SHIFT, "OO|$OO:shiftquant");
}

static PyObject *py_constquant(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return range_quant(args, kw, Q_CONST, "OOO|$O:constquant");
}

static PyObject *py_errorquant(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return range_quant(args, kw, Q_ERROR, "OO|$OO:errorquant");
}

/* clamp(x, lo, hi) between an input and an output format: ReLU, ReLU6, plain quantization. */
static PyObject *py_clamp(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"x", "lo", "hi", "in_fmt", "out_fmt", "inplace", "nthreads", NULL};
    PyObject *xo, *loo, *hio, *fi = Py_None, *fo = Py_None, *nto = NULL;
    double lo, hi;
    int inplace = 0, nthreads;
    wg_format in_f, out_f;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OOpO:clamp", names, &xo, &loo, &hio, &fi, &fo,
                                     &inplace, &nto) ||
        get_double(loo, "lo", &lo) || get_double(hio, "hi", &hi) ||
        parse_format(fi, &in_f, "in_fmt") || parse_format(fo, &out_f, "out_fmt") ||
        get_threads(nto, &nthreads))
        return NULL;
    PyArrayObject *x, *out;
    if (inplace) {
        if (!PyArray_Check(xo) || PyArray_TYPE((PyArrayObject *)xo) != NPY_FLOAT32 ||
            !PyArray_ISWRITEABLE((PyArrayObject *)xo)) {
            PyErr_SetString(PyExc_TypeError,
                            "input: inplace=True needs a writeable float32 numpy array");
            return NULL;
        }
        /* Asking for native float32 also converts other byte orders, written back after. */
        out = (PyArrayObject *)PyArray_FromArray(
            (PyArrayObject *)xo, PyArray_DescrFromType(NPY_FLOAT32), NPY_ARRAY_INOUT_ARRAY2);
        if (!out)
            return NULL;
        x = out;
        Py_INCREF(x);
    } else {
        if (!(x = as_f32(xo, "input")))
            return NULL;
        if (!(out = new_f32(PyArray_NDIM(x), PyArray_DIMS(x)))) {
            Py_DECREF(x);
            return NULL;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    wg_clamp_forward(F32(out), F32(x), (size_t)PyArray_SIZE(x), (float)lo, (float)hi, &in_f,
                     &out_f, nthreads);
    Py_END_ALLOW_THREADS
    Py_DECREF(x);
    if (inplace) {
        if (PyArray_ResolveWritebackIfCopy(out) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(out);
        Py_INCREF(xo);
        return xo;
    }
    return (PyObject *)out;
}

/* ------------------------------------------------------------------------ */
/* Convolution, AdderNet, linear                                            */
/* ------------------------------------------------------------------------ */

/* ValueError naming the argument whose value leaves some size of the layer (an element or byte
 * count, a padded extent, a window span) beyond int64 / size_t; `got` describes the shape. */
static int shape_error(wg_arg a, const char *layer, const char *got)
{
    PyErr_Format(PyExc_ValueError,
                 "%s: expected a value for which the %s's sizes (elements, bytes, padded extents, "
                 "window spans) fit 64-bit integers, got %s",
                 wg_arg_name(a), layer, got);
    return -1;
}

static void describe_conv(char *buf, size_t len, const wg_conv2d_dims *d, const int64_t *pad)
{
    snprintf(buf, len,
             "input (%lld, %lld, %lld, %lld), weight (%lld, %lld, %lld, %lld), stride (%lld, %lld), "
             "padding (%lld, %lld, %lld, %lld), dilation (%lld, %lld)",
             (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->oc,
             (long long)(d->c / (d->groups > 0 ? d->groups : 1)), (long long)d->kh,
             (long long)d->kw, (long long)d->sh, (long long)d->sw, (long long)pad[0],
             (long long)pad[1], (long long)pad[2], (long long)pad[3], (long long)d->dh,
             (long long)d->dw);
}

static void describe_pool(char *buf, size_t len, const wg_pool_dims *d)
{
    snprintf(buf, len,
             "input planes (%lld, %lld, %lld, %lld), kernel_size (%lld, %lld, %lld), stride (%lld, "
             "%lld, %lld), padding (%lld, %lld, %lld), dilation (%lld, %lld, %lld)",
             (long long)d->planes, (long long)d->id, (long long)d->ih, (long long)d->iw,
             (long long)d->kd, (long long)d->kh, (long long)d->kw, (long long)d->sd,
             (long long)d->sh, (long long)d->sw, (long long)d->pd, (long long)d->ph,
             (long long)d->pw, (long long)d->dd, (long long)d->dh, (long long)d->dw);
}

static PyObject *patch_layer(PyObject *args, PyObject *kw, int adder)
{
    static char *names[] = {"input", "weight", "bias", "stride", "padding", "dilation",
                            "groups", "out_fmt", "exact", "nthreads", "in_fmt", NULL};
    PyObject *xo, *wo, *bo = Py_None, *so, *po, *dlo, *fo = Py_None, *go = NULL, *nto = NULL;
    PyObject *fio = Py_None;
    long long groups;
    int exact = 0, nthreads, ok;
    int64_t stride[2], pad[4], dil[2];
    wg_format f, fi;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO|OOpOO", names, &xo, &wo, &bo, &so, &po,
                                     &dlo, &go, &fo, &exact, &nto, &fio) ||
        parse_ints(so, stride, 2, 1, "stride") || parse_ints(po, pad, 4, 0, "padding") ||
        parse_ints(dlo, dil, 2, 1, "dilation") || parse_format(fo, &f, "out_fmt") ||
        parse_format(fio, &fi, "in_fmt") ||
        opt_int(go, "groups", 1, (long long)1 << 40, 1, &groups) || get_threads(nto, &nthreads))
        return NULL;
    if (groups < 1 || (adder && groups != 1)) {
        PyErr_Format(PyExc_ValueError, "groups: expected %s, got %lld",
                     adder ? "1 for Adder2d" : "a positive int", groups);
        return NULL;
    }
    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    if (!(x = as_f32(xo, "input")) || !(w = as_f32(wo, "weight")) ||
        (b = as_f32_optional(bo, "bias", &ok), !ok) ||
        check_ndim(x, 4, "input", "(n, c, h, w)") ||
        check_ndim(w, 4, "weight", "(out_channels, in_channels / groups, kh, kw)"))
        goto done;
    wg_conv2d_dims d;
    d.n = PyArray_DIM(x, 0), d.c = PyArray_DIM(x, 1), d.h = PyArray_DIM(x, 2), d.w = PyArray_DIM(x, 3);
    d.oc = PyArray_DIM(w, 0), d.kh = PyArray_DIM(w, 2), d.kw = PyArray_DIM(w, 3);
    d.sh = stride[0], d.sw = stride[1], d.ph = pad[0], d.pw = pad[1];
    d.dh = dil[0], d.dw = dil[1], d.groups = groups;
    if (d.c % groups || d.oc % groups) {
        PyErr_Format(PyExc_ValueError,
                     "groups: must divide in_channels (%lld) and out_channels (%lld), got %lld",
                     (long long)d.c, (long long)d.oc, groups);
        goto done;
    }
    int64_t expect_c;
    if (wg_mul_i64(PyArray_DIM(w, 1), groups, &expect_c) || expect_c != d.c) {
        PyErr_Format(PyExc_ValueError,
                     "input: expected %lld channels (weight %lldx%lldx%lldx%lld, groups=%lld), "
                     "got %lld channels",
                     expect_c == d.c ? -1LL : (long long)expect_c, (long long)d.oc,
                     (long long)PyArray_DIM(w, 1), (long long)d.kh, (long long)d.kw, groups,
                     (long long)d.c);
        goto done;
    }
    if (check_vector(b, d.oc, "bias"))
        goto done;
    char got[512];
    const wg_arg bad = wg_conv2d_shape(&d, pad[2], pad[3]);
    if (bad) {
        describe_conv(got, sizeof got, &d, pad);
        shape_error(bad, adder ? "Adder2d" : "convolution", got);
        goto done;
    }
    if (d.oh < 0 || d.ow < 0 || d.kh == 0 || d.kw == 0) { /* extents fit: shape_error otherwise */
        PyErr_Format(PyExc_ValueError,
                     "weight: kernel size (%lld, %lld) with dilation (%lld, %lld) is larger "
                     "than the padded input (%lld, %lld)",
                     (long long)d.kh, (long long)d.kw, (long long)d.dh, (long long)d.dw,
                     (long long)(d.h + pad[0] + pad[2]), (long long)(d.w + pad[1] + pad[3]));
        goto done;
    }
    npy_intp dims[4] = {d.n, d.oc, d.oh, d.ow};
    if (!(out = new_f32(4, dims)))
        goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = (adder ? wg_adder2d_forward : wg_conv2d_forward)(F32(out), F32(x), F32(w), F32_OR_NULL(b),
                                                         &d, &fi, &f, exact, nthreads);
    Py_END_ALLOW_THREADS
    if (rc != WG_OK) {
        Py_CLEAR(out);
        if (rc == WG_ERANGE) { /* not reached: wg_conv2d_shape checked the same bounds */
            describe_conv(got, sizeof got, &d, pad);
            shape_error(wg_conv2d_valid(&d), adder ? "Adder2d" : "convolution", got);
        } else
            PyErr_NoMemory();
    }
done:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    return (PyObject *)out;
}

static PyObject *py_conv2d(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return patch_layer(args, kw, 0);
}

static PyObject *py_adder2d(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return patch_layer(args, kw, 1);
}

static PyObject *py_linear(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "weight", "bias", "out_fmt", "exact", "nthreads", NULL};
    PyObject *xo, *wo, *bo = Py_None, *fo = Py_None, *nto = NULL;
    int exact = 0, nthreads, ok;
    wg_format f;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOpO:linear", names, &xo, &wo, &bo, &fo,
                                     &exact, &nto) ||
        parse_format(fo, &f, "out_fmt") || get_threads(nto, &nthreads))
        return NULL;
    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    if (!(x = as_f32(xo, "input")) || !(w = as_f32(wo, "weight")) ||
        (b = as_f32_optional(bo, "bias", &ok), !ok) ||
        check_ndim(x, 2, "input", "(batch, in_features)") ||
        check_ndim(w, 2, "weight", "(out_features, in_features)") ||
        check_vector(b, PyArray_DIM(w, 0), "bias"))
        goto done;
    if (PyArray_DIM(x, 1) != PyArray_DIM(w, 1)) {
        PyErr_Format(PyExc_ValueError, "input: expected %lld features (weight %lldx%lld), got %lld",
                     (long long)PyArray_DIM(w, 1), (long long)PyArray_DIM(w, 0),
                     (long long)PyArray_DIM(w, 1), (long long)PyArray_DIM(x, 1));
        goto done;
    }
    npy_intp dims[2] = {PyArray_DIM(x, 0), PyArray_DIM(w, 0)};
    if (!(out = new_f32(2, dims)))
        goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = wg_linear_forward(F32(out), F32(x), F32(w), F32_OR_NULL(b), dims[0], PyArray_DIM(x, 1),
                           dims[1], &f, exact, nthreads);
    Py_END_ALLOW_THREADS
    if (rc != WG_OK) {
        Py_CLEAR(out);
        PyErr_NoMemory();
    }
done:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    return (PyObject *)out;
}

/* ------------------------------------------------------------------------ */
/* Batch normalisation                                                      */
/* ------------------------------------------------------------------------ */

static int nc_hw(PyArrayObject *x, int64_t *n, int64_t *c, int64_t *hw)
{
    if (PyArray_NDIM(x) < 2) {
        PyErr_Format(PyExc_ValueError, "input: expected at least 2 dimensions (n, c, ...), got %d",
                     PyArray_NDIM(x));
        return -1;
    }
    *n = PyArray_DIM(x, 0), *c = PyArray_DIM(x, 1), *hw = 1;
    for (int i = 2; i < PyArray_NDIM(x); i++)
        if (wg_mul_i64(*hw, PyArray_DIM(x, i), hw)) /* NumPy bounds the size: not reached */
            return shape_error(WG_ARG_INPUT, "batch norm", "an array of more elements");
    return 0;
}

static PyObject *py_batchnorm(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "mean", "var", "weight", "bias", "eps", "out_fmt",
                            "nthreads", "lo", "hi", "in_fmt", NULL};
    PyObject *xo, *mo, *vo, *wo = Py_None, *bo = Py_None, *fo = Py_None, *epso = NULL, *nto = NULL;
    PyObject *loo = NULL, *hio = NULL, *fio = Py_None;
    double eps = 1e-5, lo = -INFINITY, hi = INFINITY;
    int nthreads, okw, okb;
    wg_format f, fi;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OOOOOOOO:batchnorm", names, &xo, &mo, &vo, &wo,
                                     &bo, &epso, &fo, &nto, &loo, &hio, &fio) ||
        (epso && get_double(epso, "eps", &eps)) || (loo && get_double(loo, "lo", &lo)) ||
        (hio && get_double(hio, "hi", &hi)) || parse_format(fo, &f, "out_fmt") ||
        parse_format(fio, &fi, "in_fmt") ||
        get_threads(nto, &nthreads))
        return NULL;
    PyArrayObject *x = NULL, *m = NULL, *v = NULL, *w = NULL, *b = NULL, *out = NULL;
    int64_t n, c, hw;
    if (!(x = as_f32(xo, "input")) || !(m = as_f32(mo, "running_mean")) ||
        !(v = as_f32(vo, "running_var")) || (w = as_f32_optional(wo, "weight", &okw), !okw) ||
        (b = as_f32_optional(bo, "bias", &okb), !okb) || nc_hw(x, &n, &c, &hw) ||
        check_vector(m, c, "running_mean") || check_vector(v, c, "running_var") ||
        check_vector(w, c, "weight") || check_vector(b, c, "bias"))
        goto done;
    if (!(out = new_f32(PyArray_NDIM(x), PyArray_DIMS(x))))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    wg_batchnorm_forward(F32(out), F32(x), F32(m), F32(v), F32_OR_NULL(w), F32_OR_NULL(b), eps, n,
                         c, hw, &fi, &f, lo, hi, nthreads);
    Py_END_ALLOW_THREADS
done:
    Py_XDECREF(x);
    Py_XDECREF(m);
    Py_XDECREF(v);
    Py_XDECREF(w);
    Py_XDECREF(b);
    return (PyObject *)out;
}

static PyObject *py_batchnorm_stats(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "nthreads", NULL};
    PyObject *xo, *nto = NULL;
    int nthreads;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:batchnorm_stats", names, &xo, &nto) ||
        get_threads(nto, &nthreads))
        return NULL;
    PyArrayObject *x = as_f32(xo, "input");
    int64_t n, c, hw;
    if (!x || nc_hw(x, &n, &c, &hw)) {
        Py_XDECREF(x);
        return NULL;
    }
    npy_intp dims[1] = {c};
    PyObject *mean = PyArray_SimpleNew(1, dims, NPY_FLOAT64);
    PyObject *var = mean ? PyArray_SimpleNew(1, dims, NPY_FLOAT64) : NULL;
    if (var) {
        Py_BEGIN_ALLOW_THREADS
        wg_batchnorm_stats((double *)PyArray_DATA((PyArrayObject *)mean),
                           (double *)PyArray_DATA((PyArrayObject *)var), F32(x), n, c, hw,
                           nthreads);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(x);
    if (!var) {
        Py_XDECREF(mean);
        return NULL;
    }
    return Py_BuildValue("(NN)", mean, var);
}

/* ------------------------------------------------------------------------ */
/* Pooling                                                                  */
/* ------------------------------------------------------------------------ */

static PyObject *pool_layer(PyObject *args, PyObject *kw, int is_max)
{
    static char *names[] = {"input", "kernel_size", "stride", "padding", "dilation",
                            "ceil_mode", "return_indices", "count_include_pad",
                            "divisor_override", "nthreads", NULL};
    PyObject *xo, *ko, *so, *po, *dlo, *divo = NULL, *nto = NULL;
    int ceil_mode = 0, return_indices = 0, count_include_pad = 1, nthreads;
    long long divisor;
    int64_t k[3], s[3], p[3], dl[3];
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOO|pppOO", names, &xo, &ko, &so, &po, &dlo,
                                     &ceil_mode, &return_indices, &count_include_pad, &divo,
                                     &nto) ||
        parse_ints(ko, k, 3, 1, "kernel_size") || parse_ints(so, s, 3, 1, "stride") ||
        parse_ints(po, p, 3, 0, "padding") || parse_ints(dlo, dl, 3, 1, "dilation") ||
        opt_int(divo, "divisor_override", 0, (long long)1 << 40, 0, &divisor) ||
        get_threads(nto, &nthreads))
        return NULL;
    for (int i = 0; i < 3; i++) {
        /* torch's rule: pad <= kernel / 2, whatever the dilation, so every window
         * holds at least one input element. */
        if (p[i] > k[i] / 2) {
            PyErr_Format(PyExc_ValueError,
                         "padding: should be at most half of the kernel size, got padding %lld "
                         "for kernel size %lld",
                         (long long)p[i], (long long)k[i]);
            return NULL;
        }
        if (!is_max && dl[i] != 1) {
            PyErr_Format(PyExc_ValueError, "dilation: average pooling has none, got %lld",
                         (long long)dl[i]);
            return NULL;
        }
    }
    PyArrayObject *x = as_f32(xo, "input"), *out = NULL, *idx = NULL;
    if (!x || check_ndim(x, 4, "input", "(planes, d, h, w)"))
        goto done;
    wg_pool_dims d;
    d.planes = PyArray_DIM(x, 0);
    d.id = PyArray_DIM(x, 1), d.ih = PyArray_DIM(x, 2), d.iw = PyArray_DIM(x, 3);
    d.kd = k[0], d.kh = k[1], d.kw = k[2], d.sd = s[0], d.sh = s[1], d.sw = s[2];
    d.pd = p[0], d.ph = p[1], d.pw = p[2], d.dd = dl[0], d.dh = dl[1], d.dw = dl[2];
    char got[512];
    const wg_arg bad = wg_pool_shape(&d, ceil_mode);
    if (bad) {
        describe_pool(got, sizeof got, &d);
        shape_error(bad, is_max ? "max pool" : "average pool", got);
        goto done;
    }
    if (d.od <= 0 || d.oh <= 0 || d.ow <= 0) {
        PyErr_Format(PyExc_ValueError,
                     "input: spatial size (%lld, %lld, %lld) is too small for kernel_size "
                     "(%lld, %lld, %lld) with padding (%lld, %lld, %lld)",
                     (long long)d.id, (long long)d.ih, (long long)d.iw, (long long)d.kd,
                     (long long)d.kh, (long long)d.kw, (long long)d.pd, (long long)d.ph,
                     (long long)d.pw);
        goto done;
    }
    npy_intp dims[4] = {d.planes, d.od, d.oh, d.ow};
    if (!(out = new_f32(4, dims)))
        goto done;
    if (return_indices && !(idx = (PyArrayObject *)PyArray_SimpleNew(4, dims, NPY_INT64))) {
        Py_CLEAR(out);
        goto done;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (is_max)
        rc = wg_maxpool_forward(F32(out), idx ? (int64_t *)PyArray_DATA(idx) : NULL, F32(x), &d,
                                nthreads);
    else
        rc = wg_avgpool_forward(F32(out), F32(x), &d, count_include_pad, (int64_t)divisor,
                                nthreads);
    Py_END_ALLOW_THREADS
    if (rc != WG_OK) { /* not reached: wg_pool_shape checked the same bounds */
        Py_CLEAR(out);
        Py_CLEAR(idx);
        describe_pool(got, sizeof got, &d);
        shape_error(wg_pool_valid(&d), is_max ? "max pool" : "average pool", got);
    }
done:
    Py_XDECREF(x);
    if (idx)
        return Py_BuildValue("(NN)", out, idx);
    return (PyObject *)out;
}

static PyObject *py_maxpool(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return pool_layer(args, kw, 1);
}

static PyObject *py_avgpool(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    return pool_layer(args, kw, 0);
}

/* ------------------------------------------------------------------------ */
/* Calibration                                                              */
/* ------------------------------------------------------------------------ */

static PyObject *py_moments(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"x", NULL};
    PyObject *xo;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:moments", names, &xo))
        return NULL;
    PyArrayObject *x = as_f32(xo, "x");
    if (!x)
        return NULL;
    wg_moments m;
    Py_BEGIN_ALLOW_THREADS
    wg_moments_of(&m, F32(x), (size_t)PyArray_SIZE(x));
    Py_END_ALLOW_THREADS
    Py_DECREF(x);
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:d,s:L}", "count", m.count, "mean", m.mean, "m2", m.m2,
                         "min", m.min, "max", m.max, "nonfinite", (long long)m.nonfinite);
}

static PyObject *py_histogram(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"x", "bins", "lo", "hi", "skip_zeros", NULL};
    PyObject *xo, *binso, *loo, *hio;
    long long bins;
    double lo, hi;
    int skip_zeros = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO|p:histogram", names, &xo, &binso, &loo, &hio,
                                     &skip_zeros) ||
        get_int(binso, NULL, "bins", 1, (long long)1 << 30, &bins) || get_double(loo, "lo", &lo) ||
        get_double(hio, "hi", &hi))
        return NULL;
    if (!isfinite(lo) || !isfinite(hi) || lo > hi) {
        PyErr_Format(PyExc_ValueError, "%s: expected finite lo <= hi, got lo=%R, hi=%R",
                     isfinite(lo) && !(lo > hi) ? "hi" : "lo", loo, hio);
        return NULL;
    }
    PyArrayObject *x = as_f32(xo, "x");
    if (!x)
        return NULL;
    npy_intp dims[1] = {(npy_intp)bins};
    PyArrayObject *counts = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (counts) {
        Py_BEGIN_ALLOW_THREADS
        wg_histogram((double *)PyArray_DATA(counts), bins, F32(x), (size_t)PyArray_SIZE(x), lo, hi,
                     skip_zeros);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(x);
    return (PyObject *)counts;
}

static PyObject *py_entropy_search(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"hist", "cali_number", "symmetric", "compat", NULL};
    PyObject *ho, *calio;
    long long cali;
    int symmetric = 0, compat = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|pp:entropy_search", names, &ho, &calio,
                                     &symmetric, &compat) ||
        get_int(calio, NULL, "cali_number", 1, (long long)1 << 30, &cali))
        return NULL;
    PyArrayObject *h = (PyArrayObject *)PyArray_FROM_OTF(ho, NPY_FLOAT64,
                                                         NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!h) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "hist: expected a 1-d array of real counts");
        return NULL;
    }
    npy_intp bins = PyArray_SIZE(h);
    if (check_ndim(h, 1, "hist", "(bins,)") < 0 || cali < 1 || cali >= bins) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError,
                         "cali_number: expected 1 <= cali_number < bins (%zd), got %lld",
                         (Py_ssize_t)bins, cali);
        Py_DECREF(h);
        return NULL;
    }
    PyArrayObject *div = (PyArrayObject *)PyArray_SimpleNew(1, &bins, NPY_FLOAT64);
    int best = -1;
    if (div) {
        Py_BEGIN_ALLOW_THREADS
        best = wg_entropy_search((double *)PyArray_DATA(div), (const double *)PyArray_DATA(h), bins,
                                 cali, symmetric, compat);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(h);
    if (!div)
        return NULL;
    if (best < 0) {
        Py_DECREF(div);
        return PyErr_NoMemory();
    }
    return Py_BuildValue("(iN)", best, div);
}

/* ------------------------------------------------------------------------ */

#define KW_METHOD(name, doc) {#name, (PyCFunction)(void (*)(void))py_##name, METH_VARARGS | METH_KEYWORDS, doc}

static PyMethodDef methods[] = {
    KW_METHOD(quantize, "quantize(x, fmt, nthreads=1): fixed-point rounding; fmt = (kind, dec, all)."),
    KW_METHOD(same, "same(a, b): whether a and b hold the same float32 values, bit for bit."),
    KW_METHOD(sround, "sround(x, *, seed): stochastic rounding."),
    KW_METHOD(shiftquant, "shiftquant(x, k): power-of-two range quantization."),
    KW_METHOD(constquant, "constquant(x, k, k_dr, *, seed): WAGEUBN weight-gradient quantization."),
    KW_METHOD(errorquant, "errorquant(x, k): WAGEUBN error quantization."),
    KW_METHOD(clamp, "clamp(x, lo, hi, in_fmt, out_fmt, inplace, nthreads): ReLU / ReLU6."),
    KW_METHOD(conv2d, "conv2d(input, weight, bias, stride, padding4, dilation, groups, out_fmt, exact, nthreads, in_fmt=None): in_fmt quantizes the input first."),
    KW_METHOD(adder2d, "adder2d(input, weight, bias, stride, padding4, dilation, groups, out_fmt, exact, nthreads, in_fmt=None)."),
    KW_METHOD(linear, "linear(input, weight, bias, out_fmt, exact, nthreads)."),
    KW_METHOD(batchnorm, "batchnorm(input, mean, var, weight, bias, eps, out_fmt, nthreads, lo=-inf, hi=inf, in_fmt=None): in_fmt quantizes the input first; clamp to [lo, hi] before the output format (a fused ReLU)."),
    KW_METHOD(batchnorm_stats, "batchnorm_stats(input, nthreads) -> (mean, biased var) per channel."),
    KW_METHOD(maxpool, "maxpool(input4d, kernel3, stride3, padding3, dilation3, ceil_mode, return_indices, ...)."),
    KW_METHOD(avgpool, "avgpool(input4d, kernel3, stride3, padding3, dilation3, ceil_mode, False, count_include_pad, divisor_override, ...)."),
    KW_METHOD(moments, "moments(x) -> dict of count, mean, m2, min, max over finite values, and nonfinite."),
    KW_METHOD(histogram, "histogram(x, bins, lo, hi, skip_zeros=False) -> float64 counts of the finite x in [lo, hi]."),
    KW_METHOD(entropy_search, "entropy_search(hist, cali_number, symmetric=False, compat=False) -> (best cut, divergences)."),
    {"simd_available", py_simd_available, METH_NOARGS,
     "simd_available(): whether the AVX2/FMA kernels run (the CPU has them, WAGEUBN_PORTABLE unset)."},
    {"int8_available", py_int8_available, METH_NOARGS,
     "int8_available(): whether convolutions of 8-bit fixed-point operands run in integers (AVX-512 VNNI; "
     "WAGEUBN_PORTABLE and WAGEUBN_SIMD unset)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wageubn._C", "C kernels of wageubn (see csrc/wageubn.h).", -1, methods,
    NULL, NULL, NULL, NULL,
};

/*
 * Activations of a few MiB are allocated and freed on every layer call.  glibc serves blocks
 * above its mmap threshold (dynamic, from 128 KiB) with fresh pages and gives freed heap
 * tops back to the system, so each new output faults in its pages again: in this VM a
 * ResNet-20 forward at batch 64 spent a third of its time in about 5,000 page faults.
 * Keeping blocks up to 32 MiB on the heap, and up to 128 MiB of free heap before trimming,
 * removes them.  Done once at import, unless the user tunes malloc (MALLOC_* variables,
 * GLIBC_TUNABLES) or sets WAGEUBN_MALLOC_TUNING=0.
 */
static void tune_malloc(void)
{
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    const char *off = getenv("WAGEUBN_MALLOC_TUNING");
    if ((off && off[0] == '0') || getenv("GLIBC_TUNABLES") || getenv("MALLOC_MMAP_THRESHOLD_") ||
        getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_TOP_PAD_"))
        return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

PyMODINIT_FUNC PyInit__C(void)
{
    import_array();
    tune_malloc();
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "MAX_WIDTH", WG_MAX_WIDTH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
